//! Generated topologies for benchmarks and stress tests.

use std::fmt::Write;

/// A topology text with `routers` home routers on the internet, each with
/// `hosts_per_router` hosts, plus one server. Node count: routers * (1 + hosts) + 1
/// (+1 namespace for the internet).
pub fn home_routers(routers: usize, hosts_per_router: usize) -> String {
    let mut s = String::from("# generated: many home routers with hosts\n");
    for r in 0..routers {
        let _ = writeln!(s, "[router.r{r}]\nwan = \"internet\"\nlan = \"10.{}.{}.0/24\"", r / 256, r % 256);
        for h in 0..hosts_per_router {
            let _ = writeln!(s, "[host.r{r}h{h}]\non = \"r{r}\"");
        }
    }
    s.push_str("[server.srv]\n");
    s
}
