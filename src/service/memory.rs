//! Keeping the idle service small (SPEC §10: under 20 MiB resident).
//!
//! A run over 10,000 keys allocates tens of MiB for a moment (the listed
//! pages, the plan, the rows written) and frees them when it ends; glibc's
//! allocator keeps freed memory mapped, spread over one arena per thread
//! that ever allocated. [`limit_arenas`] caps those arenas at start-up and
//! [`release`] hands what is free back to the kernel after each run. Both
//! do nothing on other platforms.

/// Arenas glibc may use: the scheduling loop, the runtime's workers and the
/// SQLite connection threads share them.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Caps glibc's malloc arenas at [`ARENAS`] (what `MALLOC_ARENA_MAX=2`
/// does), unless `MALLOC_ARENA_MAX` is set. Call it before any thread is
/// started.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets an allocator parameter; M_ARENA_MAX
        // is valid for every glibc that has arenas.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        }
    };
}

/// Returns the allocator's free memory to the kernel (`malloc_trim`);
/// called once a run and what follows it are done.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointers and is thread-safe; it only
    // releases free pages of every arena.
    unsafe {
        libc::malloc_trim(0);
    };
}
