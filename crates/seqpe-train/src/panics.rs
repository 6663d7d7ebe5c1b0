//! Turning a dependency's panic into an error without its message and backtrace reaching the
//! user first: [`catch_quietly`].

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}
static HOOK: Once = Once::new();

/// Runs `f`, catching a panic as `Err(message)`. While `f` runs, a panic *on this thread* prints
/// nothing (the caller reports it as an error with a fix); panics on other threads, and later
/// ones here, keep their message and location. Burn panics where it could return an error (a
/// record of another model's structure, a missing GPU adapter).
pub fn catch_quietly<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info)
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_becomes_its_message() {
        assert_eq!(catch_quietly(|| 3), Ok(3));
        let err = catch_quietly(|| -> u8 { panic!("shape {} vs {}", 2, 3) }).unwrap_err();
        assert_eq!(err, "shape 2 vs 3");
        assert_eq!(
            catch_quietly(|| -> u8 { panic!("static") }).unwrap_err(),
            "static"
        );
        // the flag is restored: a nested call leaves the outer one quiet
        let outer = catch_quietly(|| {
            let _ = catch_quietly(|| 1);
            panic!("still quiet")
        });
        assert_eq!(outer, Err::<(), _>("still quiet".into()));
    }

    /// The child half of the next test: a caught panic, then a line to show the child ran.
    #[test]
    fn child_catches_a_panic() {
        if std::env::var_os("SEQPE_QUIET_PANIC_CHILD").is_none() {
            return;
        }
        let _ = catch_quietly(|| -> u8 { panic!("this message must not be printed") });
        eprintln!("child finished");
    }

    #[test]
    fn a_caught_panic_prints_nothing() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "panics::tests::child_catches_a_panic",
                "--exact",
                "--nocapture",
            ])
            .env("SEQPE_QUIET_PANIC_CHILD", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("child finished"), "{stderr}");
        assert!(!stderr.contains("must not be printed"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
