/* file_lock.h: one lock for the file that includes it (its own static instance): lock() and
 * unlock() around the file's shared state. pthreads, or an SRW lock on Windows. Under pthreads,
 * fork() takes the lock first and both processes release it after, so a child forked while
 * another thread held it does not inherit a lock that nobody will release. Include it once per
 * file, in files that need one lock. */
#if defined(_WIN32)
#include <windows.h>
static SRWLOCK file_lock = SRWLOCK_INIT;
static void lock(void) { AcquireSRWLockExclusive(&file_lock); }
static void unlock(void) { ReleaseSRWLockExclusive(&file_lock); }
#else
#include <pthread.h>
static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_handlers_once = PTHREAD_ONCE_INIT;
static void lock_for_fork(void) { pthread_mutex_lock(&file_lock); }
static void unlock_after_fork(void) { pthread_mutex_unlock(&file_lock); }
static void register_fork_handlers(void) { pthread_atfork(lock_for_fork, unlock_after_fork, unlock_after_fork); }
static void lock(void)
{
    pthread_once(&fork_handlers_once, register_fork_handlers);
    pthread_mutex_lock(&file_lock);
}
static void unlock(void) { pthread_mutex_unlock(&file_lock); }
#endif
