//! Transparent huge pages for the heap that holds the agency indexes. At 100k agencies the
//! indexes take hundreds of MiB and a check touches a few random cache lines in them; with
//! 4 KiB pages each of those also misses the TLB. glibc backs its heap with huge pages when
//! started with the tunable `glibc.malloc.hugetlb=1` (glibc ≥ 2.35; it reads tunables only at
//! start), so `tessera serve` starts itself again once with the tunable set, when the kernel
//! gives huge pages only on request (`madvise` mode). Measured in docs/BENCHMARKS.md ("Hot
//! paths"): the 100k-agency check p50 −23%.
//!
//! INVARIANT: at most one restart (the variable it sets is the guard), only for `serve`, only
//! where it can help, and never when turned off (`TESSERA_HUGE_PAGES=off`, read by the CLI); if the restart fails the server
//! runs as it is.

use std::os::unix::process::CommandExt;

const TUNABLES: &str = "GLIBC_TUNABLES";
const TUNABLE: &str = "glibc.malloc.hugetlb=1";

/// Whether to restart: huge pages on request only, no tunable set yet, not turned off.
fn wanted(switch: Option<&str>, tunables: Option<&str>, thp_mode: Option<&str>) -> bool {
    switch.is_none_or(|s| !s.eq_ignore_ascii_case("off"))
        && tunables.is_none_or(|t| !t.contains("glibc.malloc.hugetlb"))
        && thp_mode.is_some_and(|m| m.contains("[madvise]"))
        && cfg!(all(target_os = "linux", target_env = "gnu"))
}

/// The value of `GLIBC_TUNABLES` with the huge-page tunable added to any already set.
fn tunables_with(existing: Option<&str>) -> String {
    match existing {
        Some(t) if !t.is_empty() => format!("{t}:{TUNABLE}"),
        _ => TUNABLE.to_owned(),
    }
}

/// Starts this process again with huge pages for its heap, if that helps here; returns only
/// if it did not (not wanted, or the restart failed). `switch`: the environment variable that
/// turns it off (`off`).
pub fn restart_with_huge_pages(switch: &str) {
    let switch = std::env::var(switch).ok();
    let tunables = std::env::var(TUNABLES).ok();
    let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok();
    if !wanted(switch.as_deref(), tunables.as_deref(), mode.as_deref()) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let err = std::process::Command::new(&exe)
        .arg0(argv0)
        .args(args)
        .env(TUNABLES, tunables_with(tunables.as_deref()))
        .exec();
    // Only reached if the exec failed: serve without huge pages.
    eprintln!("tessera: could not restart with huge pages ({err}); serving without them");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_only_where_it_helps_and_only_once() {
        let madvise = Some("always [madvise] never\n");
        let linux_gnu = cfg!(all(target_os = "linux", target_env = "gnu"));
        assert_eq!(wanted(None, None, madvise), linux_gnu);
        assert!(!wanted(Some("off"), None, madvise), "turned off");
        assert!(!wanted(Some("OFF"), None, madvise), "turned off");
        assert!(
            !wanted(None, Some("glibc.malloc.hugetlb=1"), madvise),
            "already restarted"
        );
        assert!(
            !wanted(None, Some("glibc.malloc.hugetlb=0"), madvise),
            "the operator chose"
        );
        assert!(
            !wanted(None, None, Some("[always] madvise never")),
            "every heap already"
        );
        assert!(
            !wanted(None, None, Some("always madvise [never]")),
            "none to have"
        );
        assert!(!wanted(None, None, None), "no THP in this kernel");
    }

    #[test]
    fn keeps_the_tunables_already_set() {
        assert_eq!(tunables_with(None), "glibc.malloc.hugetlb=1");
        assert_eq!(tunables_with(Some("")), "glibc.malloc.hugetlb=1");
        assert_eq!(
            tunables_with(Some("glibc.malloc.arena_max=2")),
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"
        );
    }
}
