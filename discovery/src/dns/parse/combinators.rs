//! What the flavour parsers share: the nom result type they use (over the line's text,
//! with `()` errors, so a failed branch costs nothing), and a few nom-compatible parsers
//! that stand in for nom's own where those are slow.
//!
//! nom's `take_until` builds a substring searcher on every call; its `char` decodes a
//! UTF-8 character before comparing it, and its `take_while_m_n` counts characters one
//! by one; its `map_opt` and `map_parser` are not inlined (nor are most of its parsers
//! over `&[u8]`, whose `take_from` is an out-of-line call, hence `&str` input). The
//! parsers here search the bytes with [`memchr`] (substring searchers built once,
//! `static` [`Finder`]s), loop over plain bytes, and are `#[inline]`. They behave as the
//! nom parsers they stand for and compose with nom's combinators. Every byte they stop
//! at or search for is ASCII, so every cut is on a character boundary (and is checked
//! anyway: a cut that is not fails rather than panics).

use std::sync::LazyLock;

use memchr::memmem::{Finder, FinderRev};
use nom::{Err, IResult, Parser};

use crate::dns::record::{Parsed, SkipReason};

/// What every parser here returns: the rest of the input and the output, or `()`.
pub(super) type Res<'a, O> = IResult<&'a str, O, ()>;

/// A substring searcher built once, the first time it is used.
pub(super) type Needle = LazyLock<Finder<'static>>;
/// A reverse substring searcher built once.
pub(super) type NeedleRev = LazyLock<FinderRev<'static>>;

/// The recoverable failure: another branch may still match.
#[inline]
pub(super) fn fail<O>() -> Result<O, Err<()>> {
    Err(Err::Error(()))
}

/// `i` split at byte `at`: the rest, and what comes before it.
#[inline]
fn split_at(i: &str, at: usize) -> Res<'_, &str> {
    match i.split_at_checked(at) {
        Some((head, rest)) => Ok((rest, head)),
        None => fail(),
    }
}

/// nom's `take_until(needle)` with a searcher built once: the input up to the first
/// `needle` (which is not consumed).
#[inline]
pub(super) fn take_until_first<'a>(needle: &'static Needle) -> impl Fn(&'a str) -> Res<'a, &'a str> {
    move |i: &'a str| match needle.find(i.as_bytes()) {
        Some(at) => split_at(i, at),
        None => fail(),
    }
}

/// The input up to the last `needle` (which is not consumed).
#[inline]
pub(super) fn take_until_last<'a>(needle: &'static NeedleRev) -> impl Fn(&'a str) -> Res<'a, &'a str> {
    move |i: &'a str| match needle.rfind(i.as_bytes()) {
        Some(at) => split_at(i, at),
        None => fail(),
    }
}

/// nom's `take_until` of one ASCII byte, by `memchr`: the input up to the first `byte`.
#[inline]
pub(super) fn take_until_byte<'a>(byte: u8) -> impl Fn(&'a str) -> Res<'a, &'a str> {
    move |i: &'a str| match memchr::memchr(byte, i.as_bytes()) {
        Some(at) => split_at(i, at),
        None => fail(),
    }
}

/// The input up to the last `byte` (ASCII), by `memrchr`.
#[inline]
pub(super) fn take_until_last_byte<'a>(byte: u8) -> impl Fn(&'a str) -> Res<'a, &'a str> {
    move |i: &'a str| match memchr::memrchr(byte, i.as_bytes()) {
        Some(at) => split_at(i, at),
        None => fail(),
    }
}

/// nom's `take_till(|c| c == byte)` for an ASCII byte, by `memchr`: the input up to the
/// first `byte`, or all of it.
#[inline]
pub(super) fn take_till_byte<'a>(byte: u8) -> impl Fn(&'a str) -> Res<'a, &'a str> {
    move |i: &'a str| split_at(i, memchr::memchr(byte, i.as_bytes()).unwrap_or(i.len()))
}

/// nom's `char` for an ASCII byte, without decoding a character first.
#[inline]
pub(super) fn byte<'a>(b: u8) -> impl Fn(&'a str) -> Res<'a, u8> {
    move |i: &'a str| match i.as_bytes().first() {
        Some(&first) if first == b => Ok((&i[1..], b)),
        _ => fail(),
    }
}

/// nom's `take_while_m_n` as a plain loop over the bytes (nom's decodes characters and
/// counts them one by one): `min..=max` bytes that satisfy `cond`, which holds only for
/// ASCII bytes, as many as there are.
#[inline]
pub(super) fn take_while_m_n<'a>(
    min: usize,
    max: usize,
    cond: impl Fn(u8) -> bool,
) -> impl Fn(&'a str) -> Res<'a, &'a str> {
    move |i: &'a str| {
        let n = i.bytes().take(max).take_while(|&b| cond(b)).count();
        if n < min {
            return fail();
        }
        split_at(i, n)
    }
}

/// A decimal number of `min..=max` ASCII digits (at most 9, so it fits). Only the
/// prefix's nom references use it now.
#[cfg(test)]
#[inline]
pub(super) fn number<'a>(min: usize, max: usize) -> impl Parser<&'a str, Output = u32, Error = ()> {
    take_while_m_n(min, max, |b| b.is_ascii_digit())
        .map(|digits: &str| digits.bytes().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
}

/// `"…"`, with `\x` escapes as both `std::quoted` and JSON write them: the text between
/// the quotes (escapes not undone) and whether there were any. Fails when the input does
/// not start with a quote or it is never closed.
#[inline]
pub(super) fn quoted_string(i: &str) -> Res<'_, (&str, bool)> {
    let bytes = i.as_bytes();
    if bytes.first() != Some(&b'"') {
        return fail();
    }
    let mut escaped = false;
    let mut at = 1;
    while let Some(&b) = bytes.get(at) {
        match b {
            // The byte after a backslash is taken as it is, whatever it is.
            b'\\' => {
                escaped = true;
                at += 2;
            }
            b'"' => {
                return match (i.get(1..at), i.get(at + 1..)) {
                    (Some(raw), Some(rest)) => Ok((rest, (raw, escaped))),
                    _ => fail(),
                };
            }
            _ => at += 1,
        }
    }
    fail()
}

/// The offsets of every `needle` byte in a haystack, in order: the fast way through a
/// line whose values are all quoted and free of escapes (a `"` then always opens or
/// closes one). Eight bytes at a time: each word's matching bytes are found with a few
/// integer operations (no per-byte branch, no call per match), then read off its mask.
#[derive(Debug, Clone)]
pub(super) struct ByteOffsets<'a> {
    hay: &'a [u8],
    /// `needle` in every byte of a word.
    needles: u64,
    /// Where the current word starts.
    word: usize,
    /// The high bit of each byte of the current word that is a needle not yet given.
    mask: u64,
}

const LOW_SEVEN: u64 = 0x7f7f_7f7f_7f7f_7f7f;

impl<'a> ByteOffsets<'a> {
    #[inline]
    pub(super) fn new(hay: &'a [u8], needle: u8) -> Self {
        let needles = u64::from_ne_bytes([needle; 8]);
        ByteOffsets { hay, needles, word: 0, mask: word_mask(hay, needles) }
    }
}

impl Iterator for ByteOffsets<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.word += 8;
            let rest = self.hay.get(self.word..).filter(|rest| !rest.is_empty())?;
            self.mask = word_mask(rest, self.needles);
        }
        let at = self.word + (self.mask.trailing_zeros() / 8) as usize;
        self.mask &= self.mask - 1;
        Some(at)
    }
}

/// The high bit of each of the first eight bytes of `hay` (fewer at its end) that
/// equals the byte of `needles`: bytes equal to it are zero after the XOR, and a byte is
/// zero exactly when neither its high bit nor (its low seven bits plus 0x7f, which never
/// carries into the next byte) has the high bit set.
#[inline]
fn word_mask(hay: &[u8], needles: u64) -> u64 {
    let (word, valid) = match hay.first_chunk::<8>() {
        Some(word) => (u64::from_le_bytes(*word), u64::MAX),
        None => {
            let mut word = [0u8; 8];
            word[..hay.len()].copy_from_slice(hay);
            (u64::from_le_bytes(word), (1u64 << (8 * hay.len())) - 1)
        }
    };
    let x = word ^ needles;
    !((x & LOW_SEVEN).wrapping_add(LOW_SEVEN) | x | LOW_SEVEN) & valid
}

/// A flavour parser's answer as the dispatcher wants it: an error means "not this
/// flavour" (`None`), a failure after a `cut` means "this flavour, but malformed".
#[inline]
pub(super) fn flavour<'a>(result: Res<'a, Parsed<'a>>) -> Option<Parsed<'a>> {
    match result {
        Ok((_, parsed)) => Some(parsed),
        Err(Err::Error(())) | Err(Err::Incomplete(_)) => None,
        Err(Err::Failure(())) => Some(Parsed::Skipped(SkipReason::Malformed)),
    }
}

/// nom's `map_parser`, inlined: `inner` applied to what `outer` recognised.
#[inline]
pub(super) fn within<'a, O>(
    mut outer: impl Parser<&'a str, Output = &'a str, Error = ()>,
    mut inner: impl Parser<&'a str, Output = O, Error = ()>,
) -> impl FnMut(&'a str) -> Res<'a, O> {
    move |i: &'a str| {
        let (rest, part) = outer.parse_complete(i)?;
        let (_, output) = inner.parse_complete(part)?;
        Ok((rest, output))
    }
}

/// nom's `map_opt`, inlined: `parser`'s output through `f`, failing where `f` gives
/// `None`.
#[inline]
pub(super) fn try_map<'a, O1, O2>(
    mut parser: impl Parser<&'a str, Output = O1, Error = ()>,
    f: impl Fn(O1) -> Option<O2>,
) -> impl FnMut(&'a str) -> Res<'a, O2> {
    move |i: &'a str| {
        let (rest, output) = parser.parse_complete(i)?;
        match f(output) {
            Some(output) => Ok((rest, output)),
            None => fail(),
        }
    }
}
