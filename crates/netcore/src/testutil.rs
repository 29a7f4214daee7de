//! Test fixtures: a fake clock with fake timers, and the skip helpers for
//! tests that need the host.
//!
//! No kernel twin; the shape follows netstack3's `FakeTimerCtx` with
//! `trigger_next()`, `advance_to()` and `assert_timers_installed()`.
//! Compiled for this crate's tests and, with the `testutils` feature, for
//! other crates' tests.

use std::hash::Hash;
use std::path::{Path, PathBuf};

use crate::clock::{Clock, VirtualClock};
use crate::time::Instant;

/// The fake clock of tests: a [`VirtualClock`] the test advances.
pub type FakeClock = VirtualClock;

/// A fake instant plus the timers armed against it.
///
/// Arming, cancelling and firing follow [`TimerWheel`](crate::TimerWheel)'s
/// contract (one pending deadline per id; arming again moves it) but fire
/// exactly at the deadline, in deadline then arm order.
#[derive(Debug)]
pub struct FakeTimers<T> {
    clock: FakeClock,
    /// (deadline, arm order, id)
    timers: Vec<(Instant, u64, T)>,
    seq: u64,
}

impl<T: Copy + Eq + Hash + std::fmt::Debug> FakeTimers<T> {
    /// Fake timers at [`Instant::ZERO`].
    pub fn new() -> FakeTimers<T> {
        FakeTimers::with_clock(FakeClock::new())
    }

    /// Fake timers reading (and advancing) `clock`.
    pub fn with_clock(clock: FakeClock) -> FakeTimers<T> {
        FakeTimers {
            clock,
            timers: Vec::new(),
            seq: 0,
        }
    }

    /// The clock (clones share it).
    pub fn clock(&self) -> &FakeClock {
        &self.clock
    }

    /// The current fake instant.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Arms `id` for `at`; returns the previous deadline if it was pending.
    pub fn arm(&mut self, id: T, at: Instant) -> Option<Instant> {
        let prev = self.cancel(id);
        self.seq += 1;
        self.timers.push((at, self.seq, id));
        prev
    }

    /// Cancels `id`; returns its deadline if it was pending.
    pub fn cancel(&mut self, id: T) -> Option<Instant> {
        let pos = self.timers.iter().position(|&(_, _, t)| t == id)?;
        Some(self.timers.swap_remove(pos).0)
    }

    /// The deadline of `id`, if pending.
    pub fn scheduled(&self, id: T) -> Option<Instant> {
        self.timers
            .iter()
            .find(|&&(_, _, t)| t == id)
            .map(|&(at, _, _)| at)
    }

    fn earliest(&self) -> Option<usize> {
        (0..self.timers.len()).min_by_key(|&i| (self.timers[i].0, self.timers[i].1))
    }

    /// Advances the clock to the earliest timer (if it is in the future),
    /// removes it and returns its id; `None` when no timer is armed.
    pub fn trigger_next(&mut self) -> Option<T> {
        let i = self.earliest()?;
        let (at, _, id) = self.timers.swap_remove(i);
        let _ = self.clock.set(at.max(self.now()));
        Some(id)
    }

    /// Fires every timer due at or before `t`, in order, advancing the clock
    /// to each deadline and finally to `t`; returns the fired ids.
    #[track_caller]
    pub fn advance_to(&mut self, t: Instant) -> Vec<T> {
        assert!(
            t >= self.now(),
            "advance_to({t}) is before now ({})",
            self.now()
        );
        let mut fired = Vec::new();
        while let Some(i) = self.earliest() {
            if self.timers[i].0 > t {
                break;
            }
            fired.extend(self.trigger_next());
        }
        let _ = self.clock.set(t);
        fired
    }

    /// Asserts that exactly these timers are armed, in any order.
    #[track_caller]
    pub fn assert_timers_installed(&self, expected: impl IntoIterator<Item = (T, Instant)>) {
        let mut want: Vec<(T, Instant)> = expected.into_iter().collect();
        let mut have: Vec<(T, Instant)> = self.timers.iter().map(|&(at, _, id)| (id, at)).collect();
        let key = |x: &(T, Instant)| (x.1, format!("{:?}", x.0));
        want.sort_by_key(key);
        have.sort_by_key(key);
        assert_eq!(have, want, "installed timers differ from the expected ones");
    }

    /// Asserts that no timer is armed.
    #[track_caller]
    pub fn assert_no_timers_installed(&self) {
        self.assert_timers_installed([]);
    }
}

impl<T: Copy + Eq + Hash + std::fmt::Debug> Default for FakeTimers<T> {
    fn default() -> FakeTimers<T> {
        FakeTimers::new()
    }
}

/// Whether the environment forbids skipping tests: `CI=true` or
/// `NETSTACK_FORBID_SKIP=1`.
fn skips_forbidden(env: &dyn Fn(&str) -> Option<String>) -> bool {
    env("CI").is_some_and(|v| v == "true") || env("NETSTACK_FORBID_SKIP").is_some_and(|v| v == "1")
}

/// Decides a skip: `Ok(())` to run, `Err(message)` to skip (printed), or a
/// panic when skips are forbidden.
#[track_caller]
fn skip_or_panic(test: &str, reason: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    assert!(
        !skips_forbidden(env),
        "{test}: {reason}, and skipping is forbidden here (CI=true or NETSTACK_FORBID_SKIP=1)"
    );
    format!("SKIP {test}: {reason}")
}

/// Whether the process may administer the network: effective uid 0 or
/// `CAP_NET_ADMIN` (bit 12) in its effective capability set.
fn has_net_admin() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    net_admin_from_status(&status)
}

fn net_admin_from_status(status: &str) -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| rest.split_whitespace())
    };
    let euid_root = field("Uid:")
        .and_then(|mut f| f.nth(1))
        .is_some_and(|euid| euid == "0");
    let cap = field("CapEff:")
        .and_then(|mut f| f.next())
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0);
    euid_root || cap
}

fn skip_unless_root_with(
    test: &str,
    privileged: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    if privileged {
        return None;
    }
    Some(skip_or_panic(
        test,
        "needs root (CAP_NET_ADMIN) to create network namespaces and TAP devices",
        env,
    ))
}

/// Returns true (and prints `SKIP <test>: needs root (CAP_NET_ADMIN) ...`)
/// when the test cannot run because the process lacks `CAP_NET_ADMIN`; the
/// caller then returns early. Panics instead of skipping when `CI=true` or
/// `NETSTACK_FORBID_SKIP=1`.
#[track_caller]
pub fn skip_unless_root(test: &str) -> bool {
    let env = |k: &str| std::env::var(k).ok();
    match skip_unless_root_with(test, has_net_admin(), &env) {
        Some(msg) => {
            println!("{msg}");
            true
        }
        None => false,
    }
}

fn shared_dir_with(
    test: &str,
    env: &dyn Fn(&str) -> Option<String>,
    manifest_dir: &Path,
) -> Result<PathBuf, String> {
    if let Some(dir) = env("NETSTACK_SHARED") {
        let dir = PathBuf::from(dir);
        return if dir.is_dir() {
            Ok(dir)
        } else {
            Err(skip_or_panic(
                test,
                &format!("NETSTACK_SHARED={} is not a directory", dir.display()),
                env,
            ))
        };
    }
    let root = manifest_dir.ancestors().find(|a| {
        std::fs::read_to_string(a.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
    });
    let Some(root) = root else {
        return Err(skip_or_panic(
            test,
            &format!("no workspace root above {}", manifest_dir.display()),
            env,
        ));
    };
    let shared = root.join("..").join("shared");
    if shared.is_dir() {
        Ok(shared)
    } else {
        Err(skip_or_panic(
            test,
            &format!(
                "needs the shared directory {} (set NETSTACK_SHARED to override)",
                shared.display()
            ),
            env,
        ))
    }
}

/// Finds `../shared/` next to the workspace root (found from
/// `CARGO_MANIFEST_DIR` upwards; `NETSTACK_SHARED` overrides). When it is
/// absent, prints `SKIP <test>: ...` with the reason and returns `None`;
/// panics instead when `CI=true` or `NETSTACK_FORBID_SKIP=1`.
#[track_caller]
pub fn shared_dir_or_skip(test: &str) -> Option<PathBuf> {
    let env = |k: &str| std::env::var(k).ok();
    let manifest =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    match shared_dir_with(test, &env, Path::new(&manifest)) {
        Ok(dir) => Some(dir),
        Err(msg) => {
            println!("{msg}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    enum T {
        Rto,
        DelAck,
        Keepalive,
    }

    #[test]
    fn fake_timers_fire_in_order() {
        let mut t = FakeTimers::new();
        let t0 = t.now();
        t.arm(T::Rto, t0 + Duration::from_millis(200));
        t.arm(T::DelAck, t0 + Duration::from_millis(40));
        t.arm(T::Keepalive, t0 + Duration::from_secs(7200));
        assert_eq!(
            t.arm(T::Rto, t0 + Duration::from_millis(300)),
            Some(t0 + Duration::from_millis(200))
        );
        t.assert_timers_installed([
            (T::DelAck, t0 + Duration::from_millis(40)),
            (T::Keepalive, t0 + Duration::from_secs(7200)),
            (T::Rto, t0 + Duration::from_millis(300)),
        ]);
        assert_eq!(t.trigger_next(), Some(T::DelAck));
        assert_eq!(t.now(), t0 + Duration::from_millis(40));
        assert_eq!(t.advance_to(Instant::from_secs(1)), [T::Rto]);
        assert_eq!(t.now(), Instant::from_secs(1));
        assert_eq!(t.cancel(T::Keepalive), Some(Instant::from_secs(7200)));
        t.assert_no_timers_installed();
        assert_eq!(t.trigger_next(), None);
    }

    #[test]
    #[should_panic(expected = "installed timers differ")]
    fn assert_timers_installed_fails_on_mismatch() {
        let mut t = FakeTimers::new();
        t.arm(T::Rto, Instant::from_millis(1));
        t.assert_timers_installed([(T::Rto, Instant::from_millis(2))]);
    }

    fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn root_skip_prints_reason_when_allowed() {
        let msg = skip_unless_root_with("tap_test", false, &env_of(&[])).unwrap();
        assert!(
            msg.starts_with("SKIP tap_test: needs root (CAP_NET_ADMIN)"),
            "{msg}"
        );
        assert_eq!(
            skip_unless_root_with("tap_test", true, &env_of(&[("CI", "true")])),
            None
        );
        // CI=false does not forbid.
        assert!(skip_unless_root_with("t", false, &env_of(&[("CI", "false")])).is_some());
    }

    #[test]
    #[should_panic(expected = "skipping is forbidden")]
    fn root_skip_panics_in_ci() {
        skip_unless_root_with("tap_test", false, &env_of(&[("CI", "true")]));
    }

    #[test]
    #[should_panic(expected = "tap_test: needs root")]
    fn root_skip_panics_when_forbidden_by_netstack_var() {
        skip_unless_root_with("tap_test", false, &env_of(&[("NETSTACK_FORBID_SKIP", "1")]));
    }

    #[test]
    fn capability_parsing() {
        assert!(net_admin_from_status(
            "Uid:\t1000\t0\t0\t0\nCapEff:\t0000000000000000\n"
        ));
        assert!(net_admin_from_status(
            "Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000001000\n"
        ));
        assert!(!net_admin_from_status(
            "Uid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000800\n"
        ));
    }

    #[test]
    fn shared_dir_found_from_manifest_or_env() {
        let tmp = std::env::temp_dir().join(format!("netcore-testutil-{}", std::process::id()));
        let ws = tmp.join("main");
        let krate = ws.join("crates").join("x");
        std::fs::create_dir_all(&krate).unwrap();
        std::fs::write(ws.join("Cargo.toml"), "[workspace]\n").unwrap();
        std::fs::write(krate.join("Cargo.toml"), "[package]\n").unwrap();
        // Absent: skip with a reason naming the path.
        let err = shared_dir_with("t", &env_of(&[]), &krate).unwrap_err();
        assert!(
            err.starts_with("SKIP t: needs the shared directory"),
            "{err}"
        );
        std::fs::create_dir_all(tmp.join("shared")).unwrap();
        let dir = shared_dir_with("t", &env_of(&[]), &krate).unwrap();
        assert!(dir.ends_with("main/../shared"), "{}", dir.display());
        // NETSTACK_SHARED overrides, and a bad override is a skip reason.
        let over: &'static str =
            Box::leak(tmp.join("shared").display().to_string().into_boxed_str());
        let vars: &'static [(&str, &str)] =
            Box::leak(vec![("NETSTACK_SHARED", over)].into_boxed_slice());
        assert_eq!(
            shared_dir_with("t", &env_of(vars), &krate).unwrap(),
            tmp.join("shared")
        );
        let err = shared_dir_with(
            "t",
            &env_of(&[("NETSTACK_SHARED", "/nonexistent/x")]),
            &krate,
        )
        .unwrap_err();
        assert!(
            err.contains("NETSTACK_SHARED=/nonexistent/x is not a directory"),
            "{err}"
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    #[should_panic(expected = "skipping is forbidden")]
    fn shared_dir_panics_when_forbidden() {
        let _ = shared_dir_with(
            "t",
            &env_of(&[
                ("NETSTACK_SHARED", "/nonexistent/x"),
                ("NETSTACK_FORBID_SKIP", "1"),
            ]),
            Path::new("/"),
        );
    }
}
