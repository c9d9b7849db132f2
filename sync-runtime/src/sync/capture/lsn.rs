//! A position in PostgreSQL's write-ahead log, as `pg_lsn` spells it: `16/B374D848`.

use std::fmt;
use std::str::FromStr;

/// A write-ahead log position (`pg_lsn`): 64 bits, written as two hexadecimal halves.
///
/// ```
/// use sync_runtime::Lsn;
///
/// let lsn: Lsn = "16/B374D848".parse().unwrap();
/// assert_eq!(u64::from(lsn), 0x16_B374_D848);
/// assert_eq!(lsn.to_string(), "16/B374D848");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

/// The size of a WAL page (PostgreSQL's `XLOG_BLCKSZ`, 8 KiB unless it was built
/// otherwise).
const WAL_PAGE: u64 = 8192;

impl Lsn {
    /// The position before any other (`0/0`), PostgreSQL's invalid LSN.
    pub const ZERO: Lsn = Lsn(0);

    /// Whether the position is the start of a WAL page: a flush position there may
    /// cut a record in two (the WAL writer writes whole pages), anywhere else it is
    /// where a record ended (a commit, or the WAL a commit needed).
    pub(crate) fn is_page_start(self) -> bool {
        self.0.is_multiple_of(WAL_PAGE)
    }

    /// An insert position (`pg_current_wal_insert_lsn()`) as the end of the record
    /// before it. When that record filled its page to the end, PostgreSQL reports the
    /// next page's start plus the page header (24 bytes, 40 at the start of a
    /// segment), while the record ends, and the flush stops, at the page boundary: a
    /// wait for a flush past the header, or a read of the slot up to it, would wait
    /// for the next record written, which on an idle source never comes.
    pub(crate) fn as_record_end(self) -> Lsn {
        const SHORT_HEADER: u64 = 24;
        const LONG_HEADER: u64 = 40;
        // Segments are a power of two of at least 1 MiB.
        const SEGMENT_UNIT: u64 = 1024 * 1024;
        let in_page = self.0 % WAL_PAGE;
        if in_page == SHORT_HEADER
            || (in_page == LONG_HEADER && self.0 % SEGMENT_UNIT == LONG_HEADER)
        {
            Lsn(self.0 - in_page)
        } else {
            self
        }
    }
}

impl From<Lsn> for u64 {
    fn from(lsn: Lsn) -> u64 {
        lsn.0
    }
}

impl From<u64> for Lsn {
    fn from(value: u64) -> Lsn {
        Lsn(value)
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Text that is not an LSN.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a WAL position (like `16/B374D848`)")]
pub struct ParseLsnError {
    text: String,
}

impl FromStr for Lsn {
    type Err = ParseLsnError;

    fn from_str(text: &str) -> Result<Lsn, ParseLsnError> {
        let error = || ParseLsnError {
            text: text.to_owned(),
        };
        let (high, low) = text.split_once('/').ok_or_else(error)?;
        let half = |part: &str| {
            if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(error());
            }
            u32::from_str_radix(part, 16).map_err(|_| error())
        };
        Ok(Lsn((u64::from(half(high)?) << 32) | u64::from(half(low)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::Lsn;

    #[test]
    fn an_insert_position_after_a_page_header_is_the_page_boundary() {
        // After a short page header, and after the long header of a segment's first
        // page: the record before ended at the boundary.
        assert_eq!(Lsn(0x0300_2018).as_record_end(), Lsn(0x0300_2000));
        assert_eq!(Lsn(0x0400_0028).as_record_end(), Lsn(0x0400_0000));
        // Anywhere else, a record ends where the position is.
        assert_eq!(Lsn(0x0300_2020).as_record_end(), Lsn(0x0300_2020));
        assert_eq!(Lsn(0x0300_2028).as_record_end(), Lsn(0x0300_2028));
        assert_eq!(Lsn(0x0300_2000).as_record_end(), Lsn(0x0300_2000));
    }

    #[test]
    fn a_page_start_is_told_apart() {
        assert!(Lsn(0x0300_2000).is_page_start());
        assert!(Lsn(0x0400_0000).is_page_start());
        assert!(!Lsn(0x0300_2018).is_page_start());
        assert!(!Lsn(0x0300_1ff8).is_page_start());
    }
}
