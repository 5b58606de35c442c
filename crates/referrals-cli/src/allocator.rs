//! The C allocator's settings for this process (glibc on Linux), set once before any thread
//! starts.
//!
//! A page of referrals is read into buffers of 100 to 400 KiB, several at once. Left to
//! itself, glibc raises its threshold for serving such blocks from mapped memory each time
//! one is freed, so that later ones come from the heap, where they leave holes that are never
//! given back; and it makes an arena for each thread that allocates. Both made an export's
//! peak grow with its length. A fixed threshold of 64 KiB gives every large buffer back to the
//! system when it is freed, and two arenas suit the two workers of the runtime.

/// Sets the allocator's parameters; call before starting threads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn tune() {
    // SAFETY: mallopt only sets parameters of glibc's allocator, and is called from `main`
    // before any other thread exists. A refused setting (a return of 0) leaves the default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Other platforms' allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn tune() {}
