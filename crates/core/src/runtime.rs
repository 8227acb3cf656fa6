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

/// Runs `work(part)` for every `part` in `0..parts`, spread over libtorch's intra-op threads.
///
/// libtorch's CPU kernels run on an OpenMP team (GNU libgomp in the PyPI wheel) whose threads
/// spin for a while after each parallel operation, waiting for the next one. Work split over
/// threads of our own between two libtorch operations competes with those spinning threads
/// for the cores (measured on 2 cores: a third of the samples in libgomp's wait loop). So
/// this hands the parts to the same team, through libgomp's `GOMP_parallel` (found at run
/// time in the loaded libraries, the entry point `#pragma omp parallel` compiles to), with
/// `tch::get_num_threads()` threads; where it is not found, or for one thread or part, it
/// falls back to `std::thread::scope` or to the calling thread. `work` must not panic (a panic
/// on an OpenMP thread aborts the process).
pub fn parallel_parts(parts: usize, work: &(dyn Fn(usize) + Sync)) {
    let threads = usize::try_from(tch::get_num_threads()).unwrap_or(1).clamp(1, parts.max(1));
    if threads == 1 {
        return (0..parts).for_each(work);
    }
    if let Some(openmp) = openmp::team() {
        return openmp.run(threads, parts, work);
    }
    std::thread::scope(|scope| {
        for first in 0..threads {
            scope.spawn(move || (first..parts).step_by(threads).for_each(work));
        }
    });
}

/// libgomp's parallel-region entry points, looked up once in the process's loaded libraries.
mod openmp {
    use std::ffi::{c_int, c_uint, c_void, CStr};
    use std::sync::OnceLock;

    type ParallelFn = unsafe extern "C" fn(extern "C" fn(*mut c_void), *mut c_void, c_uint, c_uint);
    type IndexFn = unsafe extern "C" fn() -> c_int;

    /// The three functions a parallel region needs.
    pub(super) struct Team {
        parallel: ParallelFn,
        thread_num: IndexFn,
        num_threads: IndexFn,
    }

    /// One region's work, passed to each thread through `GOMP_parallel`'s data pointer.
    struct Region<'a> {
        team: &'a Team,
        parts: usize,
        work: &'a (dyn Fn(usize) + Sync),
    }

    /// The process's libgomp, when one is loaded (libtorch's).
    pub(super) fn team() -> Option<&'static Team> {
        static TEAM: OnceLock<Option<Team>> = OnceLock::new();
        TEAM.get_or_init(|| {
            Some(Team {
                // SAFETY: the symbols, where present, are libgomp's with these C signatures
                // (GOMP_parallel is libgomp's ABI since GCC 4.9; the two others are OpenMP's).
                parallel: unsafe { std::mem::transmute::<*mut c_void, ParallelFn>(symbol(c"GOMP_parallel")?) },
                thread_num: unsafe { std::mem::transmute::<*mut c_void, IndexFn>(symbol(c"omp_get_thread_num")?) },
                num_threads: unsafe { std::mem::transmute::<*mut c_void, IndexFn>(symbol(c"omp_get_num_threads")?) },
            })
        })
        .as_ref()
    }

    /// A symbol of the loaded libraries, or `None`.
    fn symbol(name: &CStr) -> Option<*mut c_void> {
        // SAFETY: dlsym with RTLD_DEFAULT only reads the loaded libraries' symbol tables.
        let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        (!address.is_null()).then_some(address)
    }

    impl Team {
        /// Runs the parts on `threads` OpenMP threads, part `i` on thread `i mod team size`.
        pub(super) fn run(&self, threads: usize, parts: usize, work: &(dyn Fn(usize) + Sync)) {
            let region = Region { team: self, parts, work };
            // SAFETY: `GOMP_parallel` calls `each_thread` on every thread of a new team with
            // the pointer given, and returns once all have finished, so `region` outlives
            // every use; `work` is `Sync`, so sharing it across the team is sound.
            unsafe {
                (self.parallel)(
                    each_thread,
                    std::ptr::addr_of!(region).cast_mut().cast(),
                    c_uint::try_from(threads).unwrap_or(1),
                    0,
                )
            };
        }
    }

    /// The body of the parallel region: this thread's share of the parts.
    extern "C" fn each_thread(data: *mut c_void) {
        // SAFETY: `data` is the `Region` that `Team::run` passed, alive until the region ends.
        let region = unsafe { &*data.cast_const().cast::<Region<'_>>() };
        // SAFETY: plain OpenMP queries, valid inside a parallel region.
        let (me, size) = unsafe { ((region.team.thread_num)(), (region.team.num_threads)()) };
        let (me, size) = (usize::try_from(me).unwrap_or(0), usize::try_from(size).unwrap_or(1).max(1));
        (me..region.parts).step_by(size).for_each(region.work);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_part_runs_once() {
        super::set_threads(2);
        let counts: Vec<AtomicUsize> = (0..37).map(|_| AtomicUsize::new(0)).collect();
        super::parallel_parts(counts.len(), &|part| {
            counts[part].fetch_add(1, Ordering::Relaxed);
        });
        assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        assert!(super::openmp::team().is_some(), "libtorch's libgomp should be found");
    }
}
