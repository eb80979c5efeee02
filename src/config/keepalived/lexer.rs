//! Stage 2a, words: a line split into words (quotes `"` and `'` with
//! shell-like escapes) and braces.

use super::lines::Line;
use super::At;
use crate::config::diag::{Diagnostic, Diagnostics, FileId, Origins, Pos};

#[derive(Debug, Clone)]
pub(super) struct Word {
    pub(super) text: String,
    pub(super) at: At,
}

#[derive(Debug, Clone)]
pub(super) enum Token {
    Word(Word),
    Open(At),
    Close(At),
    EndOfLine,
}

/// Splits a line into words and braces; an unterminated quote is reported.
pub(super) fn tokenize(
    line: &Line,
    tokens: &mut Vec<Token>,
    origins: &Origins,
    diags: &mut Diagnostics,
) {
    if let Some(at) = lex(line, tokens) {
        diags.push(Diagnostic::warning(
            origins.path_of(at.file),
            at.pos,
            "a quoted string is not closed; it ends at the end of the line",
        ));
    }
}

/// The lexer proper; returns where an unterminated quote started.
fn lex(line: &Line, tokens: &mut Vec<Token>) -> Option<At> {
    let at = |col: u32| At {
        file: line.file,
        pos: Pos::new(line.line, col),
    };
    let mut word: Option<Word> = None;
    let mut quote: Option<(char, At)> = None;
    let mut chars = line.text.chars().peekable();
    let mut col = line.col;
    let flush = |word: &mut Option<Word>, tokens: &mut Vec<Token>| {
        if let Some(w) = word.take() {
            tokens.push(Token::Word(w));
        }
    };
    while let Some(c) = chars.next() {
        let here = at(col);
        col += 1;
        if let Some((q, _)) = quote {
            let w = word.get_or_insert_with(|| Word {
                text: String::new(),
                at: here,
            });
            if c == q {
                quote = None;
            } else if c == '\\' {
                if let Some(e) = escape(&mut chars, &mut col) {
                    w.text.push(e);
                }
            } else {
                w.text.push(c);
            }
            continue;
        }
        match c {
            c if c.is_whitespace() => flush(&mut word, tokens),
            '{' => {
                flush(&mut word, tokens);
                tokens.push(Token::Open(here));
            }
            '}' => {
                flush(&mut word, tokens);
                tokens.push(Token::Close(here));
            }
            '"' | '\'' => {
                word.get_or_insert_with(|| Word {
                    text: String::new(),
                    at: here,
                });
                quote = Some((c, here));
            }
            c => word
                .get_or_insert_with(|| Word {
                    text: String::new(),
                    at: here,
                })
                .text
                .push(c),
        }
    }
    flush(&mut word, tokens);
    tokens.push(Token::EndOfLine);
    quote.map(|(_, at)| at)
}

/// The character an escape inside quotes stands for (the backslash is
/// read): `\a \b \E \f \n \r \t \v`, `\nnn` octal, `\xXX` hex, `\cC`
/// control, `\C` for C itself.
fn escape(chars: &mut std::iter::Peekable<std::str::Chars>, col: &mut u32) -> Option<char> {
    let c = chars.next()?;
    *col += 1;
    let mut digits = |radix: u32, max: usize| {
        let mut value = 0u32;
        let mut count = 0usize;
        while count < max {
            match chars.peek().and_then(|d| d.to_digit(radix)) {
                Some(d) => {
                    value = value * radix + d;
                    chars.next();
                    *col += 1;
                    count += 1;
                }
                None => break,
            }
        }
        (count > 0).then_some(value)
    };
    Some(match c {
        'a' => '\x07',
        'b' => '\x08',
        'E' => '\x1b',
        'f' => '\x0c',
        'n' => '\n',
        'r' => '\r',
        't' => '\t',
        'v' => '\x0b',
        '0'..='7' => {
            let mut value = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                match chars.peek().and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        value = value * 8 + d;
                        chars.next();
                        *col += 1;
                    }
                    None => break,
                }
            }
            char::from_u32(value & 0xff)?
        }
        'x' => match digits(16, 2) {
            Some(v) => char::from_u32(v)?,
            None => 'x',
        },
        'c' => {
            let ctl = chars.next()?;
            *col += 1;
            char::from_u32(u32::from(ctl) & 0x1f)?
        }
        other => other,
    })
}

// ------------------------------------------------------------------ blocks

/// The words of a text, quotes removed (for `include`).
pub(super) fn split_words(text: &str) -> Vec<String> {
    let line = Line {
        file: FileId(0),
        line: 0,
        col: 1,
        text: text.to_string(),
    };
    let mut tokens = Vec::new();
    lex(&line, &mut tokens);
    tokens
        .into_iter()
        .filter_map(|t| match t {
            Token::Word(w) => Some(w.text),
            _ => None,
        })
        .collect()
}
