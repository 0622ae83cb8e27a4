//! A network namespace joined to the host by a veth pair, for end-to-end
//! tests that send real traffic through an XDP program.
//!
//! [`Netns::new`] creates `ip netns add <unique name>` and a veth pair with
//! [`unique_name`] names: the host end stays in the current namespace, the
//! peer is moved into the new one. Both ends get addresses from a /24 and a
//! /64 that no interface of the host uses yet (`10.201.N.0/24`,
//! `fd00:ebf:201:N::/64`; `.1`/`::1` on the host, `.2`/`::2` in the
//! namespace; IPv6 with `nodad`, so they are usable at once). Dropping the
//! guard deletes the veth pair and the namespace, also when a test panics.
//!
//! [`Netns::attach_xdp`] attaches a pinned program to the host end; the
//! returned [`XdpAttachment`] borrows the guard, so it is always detached
//! before the interface is deleted.
//!
//! ```no_run
//! use ebpf_sdk_testkit::harness::Need;
//! use ebpf_sdk_testkit::netns::Netns;
//!
//! ebpf_sdk_testkit::harness! {
//!     pings: [Need::Kernel, Need::Programs(&["ip", "ping"])],
//! }
//!
//! fn pings() {
//!     let net = Netns::new("pings").unwrap();
//!     let out = net
//!         .exec("ping")
//!         .args(["-c", "1", "-W", "1", &net.host_v4().to_string()])
//!         .output()
//!         .unwrap();
//!     assert!(out.status.success());
//! } // The namespace and both veth ends are deleted here.
//! ```

use std::ffi::OsStr;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::{find_program, kernel_required, REQUIRE_KERNEL_ENV};
use crate::fs::{unique_name, TestLock};
use crate::TestkitError;

/// The lock (see [`TestLock::acquire`]) held while a [`Netns`] picks its
/// subnet and assigns it, so concurrent tests never pick the same one.
pub const NETNS_LOCK: &str = "netns";

/// Checks that every program in `programs` is on `PATH` (or in the sbin
/// directories), like [`require_kernel`](crate::require_kernel): a test
/// listed in a [`harness`](mod@crate::harness) with
/// [`Need::Programs`](crate::harness::Need::Programs) only runs when they
/// are, so there it returns `true`. Anywhere else, when one is missing, it
/// prints `skipping <test>: <reason>` and returns `false`; it panics instead
/// when `EBPF_SDK_REQUIRE_KERNEL=1`, or under a harness when the test did
/// not declare the need.
#[must_use = "skip the test when this returns false"]
pub fn require_programs(test: &str, programs: &[&str]) -> bool {
    let Some(reason) = missing_programs(programs) else {
        return true;
    };
    if kernel_required() {
        panic!("{test}: {REQUIRE_KERNEL_ENV}=1 but {reason}");
    }
    if crate::harness::active() {
        panic!("{test}: {reason}; declare Need::Programs for this test in its harness list");
    }
    eprintln!("skipping {test}: {reason}");
    false
}

/// `None` when every program is installed, else which are not.
pub(crate) fn missing_programs(programs: &[&str]) -> Option<String> {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| find_program(p).is_none())
        .collect();
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "{} not installed (`bash .ci/setup` installs what the tests use)",
        missing.join(", ")
    ))
}

/// A network namespace and a veth pair into it, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    ip: PathBuf,
    name: String,
    host_if: String,
    peer_if: String,
    host_ifindex: u32,
    subnet: u8,
}

impl Netns {
    /// Creates the namespace `<unique_name(prefix)>`, the veth pair and the
    /// addresses, with both ends (and the namespace's `lo`) up.
    ///
    /// On error, whatever was already created is deleted again.
    pub fn new(prefix: &str) -> Result<Netns, TestkitError> {
        let ip = find_program("ip").ok_or(TestkitError::Missing {
            what: "ip".into(),
            hint: "apt-get install iproute2",
        })?;
        let _lock = TestLock::acquire(NETNS_LOCK)?;
        let subnet = free_subnet(&ip)?;
        let name = unique_name(prefix);
        run(&ip, &["netns", "add", &name])?;
        // From here on, dropping `net` undoes every step.
        let mut net = Netns {
            ip,
            name,
            host_if: unique_name("veh"),
            peer_if: unique_name("vep"),
            host_ifindex: 0,
            subnet,
        };
        net.setup()?;
        Ok(net)
    }

    fn setup(&mut self) -> Result<(), TestkitError> {
        let (ns, host, peer) = (&self.name, &self.host_if, &self.peer_if);
        let cidr4 = |a: Ipv4Addr| format!("{a}/24");
        let cidr6 = |a: Ipv6Addr| format!("{a}/64");
        let (h4, n4) = (cidr4(self.host_v4()), cidr4(self.ns_v4()));
        let (h6, n6) = (cidr6(self.host_v6()), cidr6(self.ns_v6()));
        let steps: [&[&str]; 8] = [
            &[
                "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns,
            ],
            &["addr", "add", &h4, "dev", host],
            &["-6", "addr", "add", &h6, "dev", host, "nodad"],
            &["link", "set", host, "up"],
            &["-n", ns, "addr", "add", &n4, "dev", peer],
            &["-n", ns, "-6", "addr", "add", &n6, "dev", peer, "nodad"],
            &["-n", ns, "link", "set", peer, "up"],
            &["-n", ns, "link", "set", "lo", "up"],
        ];
        for args in steps {
            run(&self.ip, args)?;
        }
        let index_file = Path::new("/sys/class/net").join(host).join("ifindex");
        let index = std::fs::read_to_string(&index_file).map_err(|source| TestkitError::Io {
            what: "cannot read",
            path: index_file.clone(),
            source,
        })?;
        self.host_ifindex = index.trim().parse().map_err(|_| TestkitError::Io {
            what: "not an ifindex in",
            path: index_file,
            source: std::io::ErrorKind::InvalidData.into(),
        })?;
        Ok(())
    }

    /// The namespace name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host end of the veth pair.
    pub fn host_if(&self) -> &str {
        &self.host_if
    }

    /// The end inside the namespace.
    pub fn peer_if(&self) -> &str {
        &self.peer_if
    }

    /// The ifindex of the host end: the `ingress_ifindex` an XDP program on
    /// it sees for traffic sent from the namespace.
    pub fn host_ifindex(&self) -> u32 {
        self.host_ifindex
    }

    /// The host end's IPv4 address, `10.201.N.1`.
    pub fn host_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 201, self.subnet, 1)
    }

    /// The namespace end's IPv4 address, `10.201.N.2`.
    pub fn ns_v4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 201, self.subnet, 2)
    }

    /// The host end's IPv6 address, `fd00:ebf:201:N::1`.
    pub fn host_v6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0xebf, 0x201, self.subnet.into(), 0, 0, 0, 1)
    }

    /// The namespace end's IPv6 address, `fd00:ebf:201:N::2`.
    pub fn ns_v6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0xebf, 0x201, self.subnet.into(), 0, 0, 0, 2)
    }

    /// The /64 both IPv6 addresses are in, `fd00:ebf:201:N::`.
    pub fn v6_prefix(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0xebf, 0x201, self.subnet.into(), 0, 0, 0, 0)
    }

    /// `ip netns exec <name> <program>`: add arguments and run it.
    pub fn exec(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(&self.ip);
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Attaches the pinned XDP program `prog` to the host end
    /// (`ip link set dev <host> xdp pinned <prog>`), until the returned
    /// guard is dropped.
    pub fn attach_xdp(&self, prog: &Path) -> Result<XdpAttachment<'_>, TestkitError> {
        let prog = prog.to_str().ok_or_else(|| TestkitError::Missing {
            what: format!("UTF-8 path {}", prog.display()),
            hint: "use UTF-8 paths",
        })?;
        run(
            &self.ip,
            &["link", "set", "dev", &self.host_if, "xdp", "pinned", prog],
        )?;
        Ok(XdpAttachment { net: self })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting either end deletes the pair; deleting the namespace
        // deletes the peer. Deleting the host end first covers a half-set-up
        // pair whose peer never reached the namespace.
        if Path::new("/sys/class/net").join(&self.host_if).exists() {
            if let Err(e) = run(&self.ip, &["link", "del", &self.host_if]) {
                eprintln!("warning: {e}");
            }
        }
        if let Err(e) = run(&self.ip, &["netns", "del", &self.name]) {
            eprintln!("warning: {e}");
        }
    }
}

/// An XDP program attached to the host end of a [`Netns`]; detached on drop.
#[derive(Debug)]
pub struct XdpAttachment<'a> {
    net: &'a Netns,
}

impl Drop for XdpAttachment<'_> {
    fn drop(&mut self) {
        let net = self.net;
        if let Err(e) = run(&net.ip, &["link", "set", "dev", &net.host_if, "xdp", "off"]) {
            eprintln!("warning: {e}");
        }
    }
}

/// A subnet no interface here uses yet (see [`pick_subnet`]).
fn free_subnet(ip: &Path) -> Result<u8, TestkitError> {
    let addrs = run(ip, &["-o", "addr", "show"])?;
    pick_subnet(&addrs, std::process::id()).ok_or(TestkitError::Missing {
        what: "a free 10.201.N.0/24 subnet".into(),
        hint: "delete leftover test interfaces (`ip -o addr show | grep 10.201.`)",
    })
}

/// The first `N` in 1..=254, starting at one derived from `seed`, such that
/// no address in `addrs` (`ip -o addr show`) is in `10.201.N.0/24` or
/// `fd00:ebf:201:N::/64`.
fn pick_subnet(addrs: &str, seed: u32) -> Option<u8> {
    let start = seed % 254;
    (0..254)
        .filter_map(|i| u8::try_from((start + i) % 254 + 1).ok())
        .find(|n| {
            !addrs.contains(&format!(" 10.201.{n}."))
                && !addrs.contains(&format!(" fd00:ebf:201:{n:x}:"))
        })
}

fn run(ip: &Path, args: &[&str]) -> Result<String, TestkitError> {
    crate::run_checked(ip, "ip", args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_a_subnet_nobody_uses() {
        let addrs = "\
2: eth0    inet 10.201.5.1/24 brd 10.201.5.255 scope global eth0
3: veh_x    inet6 fd00:ebf:201:6::1/64 scope global
4: veh_y    inet 10.201.50.1/24 scope global veh_y
";
        assert_eq!(pick_subnet(addrs, 3), Some(4));
        assert_eq!(pick_subnet(addrs, 4), Some(7), "5 and 6 are taken");
        assert_eq!(pick_subnet(addrs, 253), Some(254));
        assert_eq!(pick_subnet(addrs, 254), Some(1), "wraps around");
        let all: String = (1..=254)
            .map(|n| format!("x inet 10.201.{n}.1/24\n"))
            .collect();
        assert_eq!(pick_subnet(&all, 0), None);
    }

    #[test]
    fn missing_programs_skip_or_fail() {
        let r = std::panic::catch_unwind(|| require_programs("t", &["ebpf-sdk-no-such-tool"]));
        match r {
            Ok(ran) => assert!(!ran && !kernel_required()),
            Err(_) => assert!(kernel_required()),
        }
        assert!(require_programs("t", &["sh"]));
    }
}
