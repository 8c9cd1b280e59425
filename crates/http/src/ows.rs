//! Optional whitespace (OWS: SP and HTAB, RFC 9110 section 5.6.3) around
//! header values and list elements, shared by framing and static files.

/// `value` without the optional whitespace around it.
// #[inline] on purpose: `frame` calls this once per framing header on
// every request, and out of line it costs instructions on the hello path.
#[inline]
pub(crate) fn trim(value: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |at| at + 1);
    &value[start..end]
}

/// `value` without the optional whitespace before it.
pub(crate) fn trim_start(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(value.len());
    &value[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_spaces_and_tabs() {
        let table: &[(&[u8], &[u8], &[u8])] = &[
            (b"", b"", b""),
            (b" \t ", b"", b""),
            (b" a b\t", b"a b", b"a b\t"),
            (b"\ta", b"a", b"a"),
            (b"a ", b"a", b"a "),
            (b"\r\na\x0b", b"\r\na\x0b", b"\r\na\x0b"),
        ];
        for &(value, both, start) in table {
            assert_eq!(trim(value), both, "{value:?}");
            assert_eq!(trim_start(value), start, "{value:?}");
        }
    }
}
