//! `count = N` on a host: N hosts behind the same uplink, named `NAME-1` .. `NAME-N`,
//! each with the table's firewall and impairment and an address of its own. The
//! expansion happens before every other check, so the names it makes are checked (and
//! collide) like written ones, located at the table they came from.

use toml::Spanned;

use super::names::MAX_NAME;
use super::raw::RawHost;
use crate::diag::Reporter;

/// Most hosts one `count` makes: each is a namespace and a link, built one by one.
pub const MAX_COUNT: i64 = 64;

/// The hosts as written, with every `count = N` table replaced by its N hosts.
pub(super) fn expand(rep: &mut Reporter, hosts: Vec<(String, Spanned<RawHost>)>) -> Vec<(String, Spanned<RawHost>)> {
    let mut out = Vec::with_capacity(hosts.len());
    for (name, h) in hosts {
        let Some(count) = h.get_ref().count.clone() else {
            out.push((name, h));
            continue;
        };
        let n = *count.get_ref();
        if !(1..=MAX_COUNT).contains(&n) {
            let hint = Some(format!("count is a whole number from 1 to {MAX_COUNT}"));
            rep.error(count.span(), format!("host `{name}`: count = {n} is out of range"), hint);
            continue;
        }
        if let Some(a) = &h.get_ref().address {
            let hint = Some("leave `address` out: each of the hosts is given its own".into());
            rep.error(a.span(), format!("host `{name}` has count = {n} and one address"), hint);
            continue;
        }
        let longest = format!("{name}-{n}");
        if longest.len() > MAX_NAME {
            let hint = Some(format!(
                "the hosts are named {name}-1 .. {longest}: shorten `{name}` (at most {MAX_NAME} characters in all)"
            ));
            rep.error(count.span(), format!("host `{name}`: the name `{longest}` is too long"), hint);
            continue;
        }
        for i in 1..=n {
            // Same span for all of them: a mistake in the table (or a clash of a made name)
            // points at the table that made it.
            let one = RawHost { count: None, ..h.get_ref().clone() };
            out.push((format!("{name}-{i}"), Spanned::new(h.span(), one)));
        }
    }
    out
}
