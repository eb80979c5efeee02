//! Stage 2b, blocks: the words of every line into statements, each with
//! its `{ }` block (opened on the keyword's line or alone on the next one).

use super::lexer::{Token, Word};
use super::At;
use crate::config::diag::{Diagnostic, Diagnostics, FileId, Origins, Pos};

/// How deep blocks may nest.
const MAX_BLOCK_DEPTH: usize = 64;

/// A keyword line: its words and, if it opens one, its block.
#[derive(Debug, Clone)]
pub(super) struct Stmt {
    pub(super) words: Vec<Word>,
    pub(super) block: Option<Vec<Stmt>>,
}

impl Stmt {
    pub(super) fn key(&self) -> &str {
        self.words.first().map_or("", |w| w.text.as_str())
    }

    pub(super) fn at(&self) -> At {
        self.words.first().map_or(
            At {
                file: FileId(0),
                pos: Pos::NONE,
            },
            |w| w.at,
        )
    }

    pub(super) fn args(&self) -> &[Word] {
        self.words.get(1..).unwrap_or(&[])
    }

    /// The block's lines; none for a keyword without a block.
    pub(super) fn items(&self) -> &[Stmt] {
        self.block.as_deref().unwrap_or(&[])
    }
}

/// Builds the statements from the tokens of every line.
pub(super) struct Tree<'a> {
    pub(super) tokens: &'a [Token],
    pub(super) next: usize,
    pub(super) origins: &'a Origins,
    pub(super) diags: &'a mut Diagnostics,
}

impl Tree<'_> {
    fn warn(&mut self, at: At, message: &str) {
        self.diags.push(Diagnostic::warning(
            self.origins.path_of(at.file),
            at.pos,
            message,
        ));
    }

    pub(super) fn build(mut self) -> Vec<Stmt> {
        self.block(None, 0)
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    /// Statements up to the `}` closing a block opened at `opened` (or the
    /// end, at the top).
    fn block(&mut self, opened: Option<At>, depth: usize) -> Vec<Stmt> {
        let mut stmts = Vec::new();
        loop {
            match self.peek().cloned() {
                None => {
                    if let Some(at) = opened {
                        self.warn(at, "this block is not closed (a '}' is missing)");
                    }
                    return stmts;
                }
                Some(Token::EndOfLine) => self.next += 1,
                Some(Token::Close(at)) => {
                    self.next += 1;
                    if opened.is_some() {
                        return stmts;
                    }
                    self.warn(at, "a '}' closes no block; it is ignored");
                }
                Some(Token::Open(at)) => {
                    self.next += 1;
                    self.warn(at, "a block without a keyword; it is skipped");
                    self.sub_block(at, depth);
                }
                Some(Token::Word(_)) => {
                    let stmt = self.statement(depth);
                    stmts.push(stmt);
                }
            }
        }
    }

    fn sub_block(&mut self, at: At, depth: usize) -> Vec<Stmt> {
        if depth >= MAX_BLOCK_DEPTH {
            self.warn(at, "blocks nest too deep; this one is skipped");
            let mut open = 1usize;
            while let Some(t) = self.tokens.get(self.next) {
                self.next += 1;
                match t {
                    Token::Open(_) => open += 1,
                    Token::Close(_) => {
                        open -= 1;
                        if open == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            return Vec::new();
        }
        self.block(Some(at), depth + 1)
    }

    fn statement(&mut self, depth: usize) -> Stmt {
        let mut words = Vec::new();
        while let Some(Token::Word(w)) = self.peek() {
            words.push(w.clone());
            self.next += 1;
        }
        // A '{' on this line, or alone at the start of the next ones.
        let mut look = self.next;
        while let Some(Token::EndOfLine) = self.tokens.get(look) {
            look += 1;
        }
        let block = match self.tokens.get(look) {
            Some(Token::Open(at)) if look == self.next || self.opens_alone(look) => {
                let at = *at;
                self.next = look + 1;
                Some(self.sub_block(at, depth))
            }
            _ => None,
        };
        Stmt { words, block }
    }

    /// Whether the `{` at `index` starts its line (a brace on the next line
    /// belongs to the keyword above it).
    fn opens_alone(&self, index: usize) -> bool {
        index > 0 && matches!(self.tokens.get(index - 1), Some(Token::EndOfLine))
    }
}

// ------------------------------------------------------------------ keywords
