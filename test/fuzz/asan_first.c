/*
 * asan_first.c - preloaded together with the ASan runtime into uninstrumented
 * PostgreSQL programs (test/fuzz/run.sh, test/sanitize.sh):
 *
 *   LD_PRELOAD=libclang_rt.asan-x86_64.so:asan_first.so postgres ...
 *
 * Built with -z initfirst, so its constructor runs before any other
 * library's.  Without it the ASan runtime initializes lazily at the first
 * malloc, which in postgres comes from libgpg-error's constructor inside
 * bindtextdomain(): ASan's initialization then calls dlsym/dlerror, whose
 * dcgettext takes glibc's _nl_state_lock again, leaving it corrupted, and
 * the next bindtextdomain (postgres's own, in main) hangs forever.
 */
extern void __asan_init(void);

__attribute__((constructor))
static void
asan_first(void)
{
	__asan_init();
}
