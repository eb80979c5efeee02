//! Test helpers shared by the wire modules.

/// Decodes a hex fixture from tests/fixtures: `#` lines are comments,
/// whitespace is ignored. Panics on malformed fixtures (tests only).
pub(crate) fn hex_fixture(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(|line| line.bytes())
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits in fixture");
    digits
        .chunks_exact(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("ascii fixture");
            u8::from_str_radix(text, 16).expect("hex digit in fixture")
        })
        .collect()
}
