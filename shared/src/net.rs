//! Network addresses the control plane judges: where plain http is allowed (the local stack).
//! No SDK, no settings.

use url::Url;

/// Is `url` on this machine: a loopback address, or `localhost`? (Where plain http is
/// allowed: the local stack.)
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
