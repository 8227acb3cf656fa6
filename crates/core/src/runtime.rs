//! Process-wide settings that make libtorch fast on CPU.

/// Keeps large freed blocks inside the process instead of returning them to the OS.
///
/// libtorch allocates and frees tens of megabytes per layer (attention scores of a batch of
/// windows). glibc serves such blocks with `mmap` and unmaps them on free, so every forward
/// pass page-faults the same memory in again: on 2 cores this made batches of 16 windows up to
/// twice as slow (measured with `just bench`). Raising the mmap and trim thresholds lets the
/// heap reuse those blocks. Call it once at start-up (the `postilla` binary does); it only
/// changes glibc's allocation policy and is a no-op elsewhere.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; it is called before any threads of
    // ours allocate concurrently, and glibc tolerates it at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

/// Sets the number of threads libtorch uses for one operation (intra-op parallelism).
pub fn set_threads(n: usize) {
    tch::set_num_threads(i32::try_from(n.max(1)).unwrap_or(i32::MAX));
}
