// SPDX-License-Identifier: GPL-2.0

//! Parsing of memory sizes given on the command line.

/// A size that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// The text is empty.
    #[error("empty size")]
    Empty,
    /// The number part is missing or not a decimal integer.
    #[error("size {0:?} does not start with a decimal number")]
    Number(String),
    /// The suffix is not one of K, M, G, T (optionally followed by `iB` or `B`).
    #[error(
        "size {0:?} has an unknown suffix; use K, M, G or T (powers of 1024), or none for bytes"
    )]
    Suffix(String),
    /// The size does not fit in 64 bits.
    #[error("size {0:?} is too large")]
    Overflow(String),
}

/// Parses a size such as `64M`, `128MiB`, `1G` or `4096`.
///
/// The suffixes K, M, G and T (either case, optionally followed by `iB` or
/// `B`) are powers of 1024, as for QEMU's `-m`; a bare number is bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(SizeError::Empty);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() {
        return Err(SizeError::Number(text.to_owned()));
    }
    let shift = suffix_shift(suffix).ok_or_else(|| SizeError::Suffix(text.to_owned()))?;
    let value: u64 = number
        .parse()
        .map_err(|_| SizeError::Overflow(text.to_owned()))?;
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| SizeError::Overflow(text.to_owned()))
}

/// The power of two a suffix stands for.
fn suffix_shift(suffix: &str) -> Option<u32> {
    let unit = suffix
        .strip_suffix("iB")
        .or_else(|| suffix.strip_suffix('B'))
        .unwrap_or(suffix);
    match unit.to_ascii_uppercase().as_str() {
        "" if suffix.is_empty() || suffix == "B" => Some(0),
        "K" => Some(10),
        "M" => Some(20),
        "G" => Some(30),
        "T" => Some(40),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_powers_of_1024() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("128m"), Ok(128 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("3GB"), Ok(3 << 30));
    }

    #[test]
    fn bare_numbers_are_bytes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert_eq!(parse_size(" 8M "), Ok(8 << 20));
    }

    #[test]
    fn malformed_sizes_are_refused() {
        assert_eq!(parse_size(""), Err(SizeError::Empty));
        assert_eq!(parse_size("M"), Err(SizeError::Number("M".into())));
        assert_eq!(parse_size("-1M"), Err(SizeError::Number("-1M".into())));
        assert_eq!(parse_size("64X"), Err(SizeError::Suffix("64X".into())));
        assert_eq!(parse_size("64 M"), Err(SizeError::Suffix("64 M".into())));
        assert_eq!(parse_size("1.5G"), Err(SizeError::Suffix("1.5G".into())));
        assert_eq!(parse_size("64iB"), Err(SizeError::Suffix("64iB".into())));
    }

    #[test]
    fn overflow_is_refused() {
        assert_eq!(
            parse_size("16777216T"),
            Err(SizeError::Overflow("16777216T".into()))
        );
        assert_eq!(
            parse_size("99999999999999999999"),
            Err(SizeError::Overflow("99999999999999999999".into()))
        );
    }
}
