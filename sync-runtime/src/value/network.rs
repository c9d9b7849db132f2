//! `inet` and `cidr` as `inet_out` / `cidr_out` print them, from the binary form:
//! family, netmask bits, is-cidr flag, address length, address bytes.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use tokio_postgres::types::Type;

use super::BoxError;

/// `AF_INET` as PostgreSQL's binary form spells it.
const FAMILY_V4: u8 = 2;
/// `AF_INET6` as PostgreSQL's binary form spells it (`AF_INET + 1`).
const FAMILY_V6: u8 = 3;

/// Whether `ty` is `inet` or `cidr`.
pub(super) fn is_network(ty: &Type) -> bool {
    matches!(*ty, Type::INET | Type::CIDR)
}

/// The text PostgreSQL prints for a binary `inet` or `cidr`: `192.168.0.1/24`,
/// `::1` (an `inet` with a full netmask has no `/bits`, a `cidr` always has).
pub(super) fn network_text(ty: &Type, raw: &[u8]) -> Result<String, BoxError> {
    let [family, bits, _is_cidr, length, address @ ..] = raw else {
        return Err("truncated inet value".into());
    };
    let mut text = String::with_capacity(48);
    let full = match (*family, address.len(), usize::from(*length)) {
        (FAMILY_V4, 4, 4) => {
            let octets: [u8; 4] = address.try_into()?;
            write!(text, "{}", Ipv4Addr::from(octets))?;
            32
        }
        (FAMILY_V6, 16, 16) => {
            let octets: [u8; 16] = address.try_into()?;
            write_ipv6(&mut text, Ipv6Addr::from(octets))?;
            128
        }
        _ => return Err(format!("invalid {} value", ty.name()).into()),
    };
    if *ty == Type::CIDR || *bits != full {
        write!(text, "/{bits}")?;
    }
    Ok(text)
}

/// An IPv6 address as PostgreSQL's `inet_net_ntop` prints it: Rust's RFC 5952 form,
/// except that an IPv4-compatible address (`::1.2.3.4`) keeps its dotted tail.
fn write_ipv6(text: &mut String, address: Ipv6Addr) -> std::fmt::Result {
    let segments = address.segments();
    if segments[..6] == [0; 6] && segments[6] != 0 {
        let [.., a, b, c, d] = address.octets();
        return write!(text, "::{}", Ipv4Addr::new(a, b, c, d));
    }
    write!(text, "{address}")
}
