//! Shared set-up of the fuzz targets (docs/FUZZING.md).
//!
//! A stack overflow is a SIGSEGV on the guard page, and a signal handler cannot run on the
//! overflowed stack. libFuzzer's own SIGSEGV handler has no alternate stack (the Rust runtime,
//! which would install one, does not run: libFuzzer owns `main`), so an overflow would kill
//! the process without saving the input. [`catch_stack_overflow`] gives the fuzzing thread an
//! alternate signal stack and a SIGSEGV handler on it that reports and aborts; libFuzzer's
//! SIGABRT handler then saves the input as a `crash-…` artifact, on that same stack.
//!
//! Run the targets with `ulimit -s 2048` (tokio's worker threads have 2 MiB stacks, so
//! that is the depth the server really has).

use std::sync::Once;

const ALT_STACK_BYTES: usize = 256 * 1024;

extern "C" fn on_segv(_sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    const MSG: &[u8] =
        b"\n==tessera-fuzz== SIGSEGV: stack overflow (or a wild access); aborting so libFuzzer saves the input\n";
    // SAFETY: write(2) and abort(3) are async-signal-safe.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::abort();
    }
}

/// Installs the alternate signal stack and the SIGSEGV handler, once, on the calling thread
/// (the fuzzing thread: call it from the target's `init`).
pub fn catch_stack_overflow() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let stack: &'static mut [u8] = Box::leak(vec![0u8; ALT_STACK_BYTES].into_boxed_slice());
        // SAFETY: the alternate stack is leaked, so it outlives every signal; the sigaction
        // struct is fully initialised (zeroed, then set) before the call.
        unsafe {
            let alt = libc::stack_t {
                ss_sp: stack.as_mut_ptr().cast(),
                ss_flags: 0,
                ss_size: stack.len(),
            };
            if libc::sigaltstack(&alt, std::ptr::null_mut()) != 0 {
                return;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_segv as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGSEGV, &action, std::ptr::null_mut());
        }
    });
}
