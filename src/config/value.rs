//! Values whose syntax is the same wherever they are written: sizes, file
//! modes, durations, flags and the few named choices, parsed here for both
//! readers (`toml.rs` and `keepalived/`). Each function takes the value's
//! text and says only whether it is one; the messages, which differ by
//! format, stay with the readers.

use std::time::Duration;

use super::model::{InitialState, Selection};

/// A size in bytes: digits, then optionally `B`, `KiB`, `MiB` or `GiB`
/// (`65536`, `64KiB`, `1MiB`); `None` when it is not one or overflows.
pub(super) fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// File permission bits in octal (`0640`): octal digits only, at most
/// `7777`.
pub(super) fn parse_octal_mode(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
}

/// Seconds, possibly fractional (`1`, `0.01`, `2.71828`); at most 9
/// fractional digits count.
pub(super) fn parse_seconds(text: &str) -> Option<Duration> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = 0u32;
    for (i, b) in fraction.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - u32::try_from(i).unwrap_or(8));
    }
    Some(Duration::new(secs, nanos))
}

/// A duration with a unit (`100ms`, `1s`, `1m 30s`).
pub(super) fn parse_duration_with_unit(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

/// Seconds ([`parse_seconds`]) or a duration with a unit
/// ([`parse_duration_with_unit`]).
pub(super) fn parse_seconds_or_unit(text: &str) -> Option<Duration> {
    parse_seconds(text).or_else(|| parse_duration_with_unit(text).ok())
}

/// `on`, `true`, `yes` / `off`, `false`, `no`.
pub(super) fn parse_flag(text: &str) -> Option<bool> {
    match text {
        "on" | "true" | "yes" => Some(true),
        "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// `master` or `backup`, in any case.
pub(super) fn parse_initial_state(text: &str) -> Option<InitialState> {
    if text.eq_ignore_ascii_case("master") {
        Some(InitialState::Master)
    } else if text.eq_ignore_ascii_case("backup") {
        Some(InitialState::Backup)
    } else {
        None
    }
}

/// `priority` or `order`.
pub(super) fn parse_selection(text: &str) -> Option<Selection> {
    match text {
        "priority" => Some(Selection::Priority),
        "order" => Some(Selection::Order),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Some(65536));
        assert_eq!(parse_size("64KiB"), Some(64 << 10));
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("7B"), Some(7));
        assert_eq!(parse_size(" 3 KiB "), Some(3 << 10));
        for bad in [
            "",
            "KiB",
            "1MB",
            "1kib",
            "-1",
            "+1",
            "1.5MiB",
            "99999999999999GiB",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn octal_modes() {
        assert_eq!(parse_octal_mode("0640"), Some(0o640));
        assert_eq!(parse_octal_mode("640"), Some(0o640));
        assert_eq!(parse_octal_mode("7777"), Some(0o7777));
        assert_eq!(parse_octal_mode("0000000000000000000000644"), Some(0o644));
        for bad in [
            "",
            "17777",
            "888",
            "0o640",
            "+640",
            "-640",
            "64 0",
            "77777777777777",
        ] {
            assert_eq!(parse_octal_mode(bad), None, "{bad}");
        }
    }

    #[test]
    fn octal_modes_as_from_str_radix_with_no_sign() {
        // The keepalived reader once used from_str_radix refusing a '+':
        // the same set of texts.
        for text in [
            "0", "+", "+1", "-1", "7", "8", "0640", "17777", "7777", "", " 1", "1 ",
        ] {
            let before = u32::from_str_radix(text, 8)
                .ok()
                .filter(|m| *m <= 0o7777 && !text.starts_with('+'));
            assert_eq!(parse_octal_mode(text), before, "{text:?}");
        }
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("1"), Some(Duration::from_secs(1)));
        assert_eq!(parse_seconds("2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_seconds(".5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_seconds("5."), Some(Duration::from_secs(5)));
        assert_eq!(parse_seconds("0.01"), Some(Duration::from_millis(10)));
        assert_eq!(parse_seconds("0.0000000019"), Some(Duration::from_nanos(1)));
        for bad in [
            "",
            ".",
            "-1",
            "+1",
            "1s",
            "1.2.3",
            "1e3",
            "99999999999999999999",
        ] {
            assert_eq!(parse_seconds(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration_with_unit("100ms").ok(),
            Some(Duration::from_millis(100))
        );
        assert!(parse_duration_with_unit("1").is_err());
        assert_eq!(
            parse_seconds_or_unit("0.1"),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            parse_seconds_or_unit("100ms"),
            Some(Duration::from_millis(100))
        );
        assert_eq!(parse_seconds_or_unit("soon"), None);
    }

    #[test]
    fn flags_and_choices() {
        for on in ["on", "true", "yes"] {
            assert_eq!(parse_flag(on), Some(true));
        }
        for off in ["off", "false", "no"] {
            assert_eq!(parse_flag(off), Some(false));
        }
        assert_eq!(parse_flag("On"), None);
        assert_eq!(parse_flag("1"), None);
        assert_eq!(parse_initial_state("MASTER"), Some(InitialState::Master));
        assert_eq!(parse_initial_state("backup"), Some(InitialState::Backup));
        assert_eq!(parse_initial_state("Backup"), Some(InitialState::Backup));
        assert_eq!(parse_initial_state("slave"), None);
        assert_eq!(parse_selection("order"), Some(Selection::Order));
        assert_eq!(parse_selection("priority"), Some(Selection::Priority));
        assert_eq!(parse_selection("Order"), None);
    }
}
