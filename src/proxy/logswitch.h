/*
 * Log files across a reload: when a reload changes log.access or log.error, the new file is
 * opened before anything is swapped in (a file that cannot be opened fails the reload, and the
 * running configuration stays), then installed once the reload commits.
 *
 * Workers read the descriptor numbers in struct tbp_proxy without a lock and may be about to
 * write to the number they loaded, so a number that was ever in use is never closed while the
 * process runs (a closed number could be reused by a client socket, and a late log line would go
 * to a client). Instead:
 * - a file replaced by another file: the new file is dup3'd onto the old number (as SIGUSR1's
 *   reopen does): a racing write goes wholly to one file or the other;
 * - a file replaced by "-": stdout / stderr is dup3'd onto the number;
 * - a file turned off (access = ""): /dev/null is dup3'd onto the number, which is kept as a
 *   spare and reused when the log is turned on again;
 * - "-" or off replaced by a file: the spare number if there is one, else the new descriptor,
 *   published with an atomic store.
 */
#ifndef TBP_LOGSWITCH_H
#define TBP_LOGSWITCH_H

#include <stddef.h>

/* One log's switch. Filled by tbp_log_switch_prepare; then commit or cancel, once. */
struct tbp_log_switch {
    int *fd;          /* the live descriptor (struct tbp_proxy's access_fd or error_fd) */
    int *spare;       /* a number kept from a file log turned off (-1: none); owned by caller */
    int std_fd;       /* what "-" means: 1 (stdout) or 2 (stderr) */
    int change;       /* the new path differs from the old one */
    const char *path; /* the new path: "" off, "-" std_fd, else an absolute file path */
    int nfd;          /* the new file, opened by prepare; -1 when none */
};

/*
 * Opens what the new path needs (a file: O_APPEND | O_CREAT, mode 0640) when it differs from
 * old_path. `what` names the setting in messages ("log.access"). Returns 0, or -1 with
 * "log.access: /path: reason" in err and nothing to undo. The strings must outlive the commit.
 */
int tbp_log_switch_prepare(struct tbp_log_switch *s, int *fd, int *spare, int std_fd,
                           const char *old_path, const char *new_path, const char *what, char *err,
                           size_t errlen);

/*
 * Installs the new path (see above). Returns 0, or -1 when a dup3 failed (errno set): the log
 * then goes on where it went before.
 */
int tbp_log_switch_commit(struct tbp_log_switch *s);

/* Closes what prepare opened: the reload did not happen. */
void tbp_log_switch_cancel(struct tbp_log_switch *s);

#endif
