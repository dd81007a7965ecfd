/*
 * commit_flush.h: commits that release a service's row lock before their
 * WAL flush, and the readers that wait for those flushes.
 */
#ifndef JAM_COMMIT_FLUSH_H
#define JAM_COMMIT_FLUSH_H

extern void jam_commit_flush_init(void);
extern void jam_commit_flush_after_unlock(void);
extern void jam_wait_durable(void);
extern void jam_commit_flush_defer_own(void);
extern void jam_commit_flush_settle(bool flush);

#endif							/* JAM_COMMIT_FLUSH_H */
