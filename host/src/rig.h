/* SPDX-License-Identifier: MIT */
/**
 * @file rig.h
 * @brief librig: the rigor host library. This header is its manual.
 *
 * A rig is the hardware wired to one board under test (the DUT): a power switch, an SD
 * card mux, buttons or boot straps, a serial console, a USB boot port and the storage
 * (the SD card behind the mux, seen by the host). Each of these is a *role*, served by a
 * *back-end* (driver) chosen by the rig description. The library holds the invariants
 * every back-end gets for free (interlocks, inversion, timeouts, logging of every state
 * change); back-ends only do raw work.
 *
 * A call flows: CLI or Lua binding -> rig_power_set() (front end: checks, inversion,
 * min off time, event log) -> ops->set() of the back-end (raw switching).
 *
 * @section rc Return codes
 * Every function that can fail returns an int: 0 (or a positive count) on success, a
 * negative ::rig_err on failure. The values reuse errno numbers, so `-rc` may be given to
 * strerror(). A human-readable detail message is kept on the handle (rig_errmsg(),
 * rig_ctx_errmsg()); the *first* error since the last rig_clear_error() wins, so the
 * root cause is not overwritten by the failures it causes.
 *
 * @section ts Thread safety
 * A context and the objects made from it belong to one thread at a time. Two contexts
 * are independent and may be used from two threads.
 *
 * @section to Timeouts
 * Every blocking call takes `int timeout_ms`: -1 waits forever, 0 polls, a positive
 * value bounds the wait. A wait is also ended early, with ::RIG_E_INTR, when the cancel
 * flag given to rig_ctx_set_cancel() becomes non-zero (signals).
 *
 * @section dbg Debugging
 * The library never prints. Log lines go to the callback set by rig_ctx_set_log_cb();
 * the environment variable RIGOR_DEBUG=1 (or a level name: err, warn, info, dbg) raises
 * the level of a new context.
 */
#ifndef RIGOR_HOST_RIG_H
#define RIGOR_HOST_RIG_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RIG_API __attribute__((visibility("default")))

/** Error codes: negative errno values, so they compose with system calls. */
enum rig_err {
	RIG_OK = 0,
	RIG_E_PERM = -EPERM,          /**< refused by an interlock (e.g. mux to host while powered) */
	RIG_E_NOENT = -ENOENT,        /**< a named thing (rig, file, button) does not exist */
	RIG_E_INTR = -EINTR,          /**< interrupted through the cancel flag */
	RIG_E_IO = -EIO,              /**< the device or back-end failed */
	RIG_E_NOMEM = -ENOMEM,        /**< out of memory */
	RIG_E_BUSY = -EBUSY,          /**< the rig is locked by another process */
	RIG_E_NODEV = -ENODEV,        /**< the device is gone or was never there */
	RIG_E_INVAL = -EINVAL,        /**< bad argument or bad rig description */
	RIG_E_PROTO = -EPROTO,        /**< the device answered something unexpected */
	RIG_E_NOTSUP = -ENOTSUP,      /**< the back-end does not implement this operation */
	RIG_E_TIMEOUT = -ETIMEDOUT,   /**< the operation did not finish within its timeout */
	RIG_E_CORRUPT = -EBADMSG,     /**< image data corrupt or truncated: the input, not the rig */
	RIG_E_NOSPC = -ENOSPC,        /**< the image does not fit the target */
	RIG_E_ROFS = -EROFS,          /**< the target is read-only (a card's write-protect switch) */
};

/** Short description of an error code ("interlock refused"); never NULL. */
RIG_API const char *rig_strerror(int err);
/** Symbolic name of an error code ("RIG_E_PERM"); never NULL. */
RIG_API const char *rig_err_name(int err);

/* ----------------------------------------------------------------------------------- */
/** @name Context */

struct rig_ctx;

/** Log levels, most severe first. */
enum rig_log_level { RIG_LOG_NONE, RIG_LOG_ERR, RIG_LOG_WARN, RIG_LOG_INFO, RIG_LOG_DBG };

/** Log callback: @p module is the subsystem ("power", "sim"), @p msg has no newline. */
typedef void (*rig_log_cb)(void *user, enum rig_log_level level, const char *module,
			   const char *msg);

/**
 * Create a context. Reads RIGOR_DEBUG for the initial log level, RIGOR_LOCK_DIR for the
 * lock directory and RIGOR_STATE_DIR for the state directory (persisted rig state: the
 * power and mux state the interlock reads, sim state, console logs). Does not touch the
 * file system (the directories are made on first use).
 *
 * By default both are one directory for the whole host, /run/lock/rigor, so every user
 * and tool sees the same lock holders and the same state. It is made on first use with
 * mode 2775 and group `rigor` when that group exists and the user may give it to it;
 * else mode 0777 (and a warning says why). Files made in it get the directory's reach
 * (rig_file_share() inside the library). When it cannot be made or written (no
 * /run/lock, or a user outside the group), the per-user directory $XDG_RUNTIME_DIR/rigor
 * or /tmp/rigor-$UID is used instead and a warning says that others do not see these
 * locks.
 *
 * Each variable defaults to the other: RIGOR_STATE_DIR alone puts locks and state in that
 * (private, mode 0700) directory, as tests do to stay apart; RIGOR_LOCK_DIR alone puts
 * both in that directory, made shared like the default.
 * @return a context to free with rig_ctx_free(), or NULL when out of memory.
 */
RIG_API struct rig_ctx *rig_ctx_new(void);
/** Free a context. Every rig opened from it must be closed first. NULL is a no-op. */
RIG_API void rig_ctx_free(struct rig_ctx *ctx);
RIG_API void rig_ctx_set_log_cb(struct rig_ctx *ctx, rig_log_cb cb, void *user);
RIG_API void rig_ctx_set_log_level(struct rig_ctx *ctx, enum rig_log_level level);
/**
 * Give the context a flag that ends every wait when it becomes non-zero (typically set by
 * a signal handler). NULL removes it; cleanup code does that so it runs to the end.
 */
RIG_API void rig_ctx_set_cancel(struct rig_ctx *ctx, volatile sig_atomic_t *flag);
/**
 * Whether the cancel flag is raised, for work that does not wait through the context
 * (the rig-file interpreter checks it between instructions).
 * @retval true the flag given to rig_ctx_set_cancel() is non-zero
 * @retval false no flag, or it is zero
 */
RIG_API bool rig_ctx_cancelled(const struct rig_ctx *ctx);
/**
 * Bound every back-end call and wait made through this context by an absolute
 * rig_now_ms() @p deadline (0 removes it): a call's timeout_ms is cut to what is left, so
 * a test case's deadline also ends a hung power switch. Set by the Lua runtime per case.
 */
RIG_API void rig_ctx_set_deadline(struct rig_ctx *ctx, int64_t deadline);
/**
 * Override the state directory (created on first use, mode 0700). The string is copied.
 * While the lock directory is still the built-in default, it moves along (as with
 * RIGOR_STATE_DIR alone).
 * @retval 0 set
 * @retval RIG_E_NOMEM out of memory
 */
RIG_API int rig_ctx_set_state_dir(struct rig_ctx *ctx, const char *dir);
/** The state directory in use; owned by the context. */
RIG_API const char *rig_ctx_state_dir(const struct rig_ctx *ctx);
/**
 * Override the lock directory (created on first use, shared as the default is). The
 * string is copied.
 * @retval 0 set
 * @retval RIG_E_NOMEM out of memory
 */
RIG_API int rig_ctx_set_lock_dir(struct rig_ctx *ctx, const char *dir);
/**
 * The lock directory in use; owned by the context. Before the first lock call it may
 * still be the default that turns out unusable (see rig_ctx_new()).
 */
RIG_API const char *rig_ctx_lock_dir(const struct rig_ctx *ctx);
/** Detail message of the first error on the context since rig_ctx_clear_error(); "" if none. */
RIG_API const char *rig_ctx_errmsg(const struct rig_ctx *ctx);
RIG_API void rig_ctx_clear_error(struct rig_ctx *ctx);
/**
 * Sleep, ending early when the cancel flag is raised.
 * @retval 0 slept the whole time
 * @retval RIG_E_INTR cancelled
 */
RIG_API int rig_ctx_sleep(struct rig_ctx *ctx, int ms);
/** Milliseconds of CLOCK_MONOTONIC. */
RIG_API int64_t rig_now_ms(void);

/**
 * The end of a bounded loop of waits, made once from a call's timeout_ms and asked at
 * every turn, so a loop of short waits never outlives its caller's bound:
 *
 *     struct rig_deadline d = rig_deadline_start(timeout_ms);
 *     while (!done) {
 *         if (rig_deadline_expired(d))
 *             return RIG_E_TIMEOUT;
 *         rc = rig_ctx_poll(ctx, fd, POLLIN, rig_deadline_left_ms(d));
 *         ...
 *     }
 *
 * A value, not an object: copy it freely. The context's own deadline (a test case's) still
 * cuts every wait made through the context.
 */
struct rig_deadline {
	int64_t end;    /**< rig_now_ms() time; INT64_MAX: never */
};
/** A deadline @p timeout_ms from now; -1: never (0: already expired, a poll). */
RIG_API struct rig_deadline rig_deadline_start(int timeout_ms);
/** Milliseconds left, 0 once expired, at most INT_MAX; -1 for a deadline that never ends. */
RIG_API int rig_deadline_left_ms(struct rig_deadline d);
/** Whether the deadline has passed (never for rig_deadline_start(-1)). */
RIG_API bool rig_deadline_expired(struct rig_deadline d);

/* ----------------------------------------------------------------------------------- */
/** @name Rig descriptions
 *
 * A description is the parsed form of a rig file: rig-level settings and a list of parts
 * (a role served by a back-end, with parameters). The Lua binding builds one from a rig
 * file; C code and tests may build one directly. Every setter records the source line so
 * rig_desc_validate() can report file:line for each mistake.
 */

struct rig_desc;

/** Value types in descriptions. */
enum rig_vtype { RIG_V_STR, RIG_V_INT, RIG_V_BOOL, RIG_V_NUM, RIG_V_LIST, RIG_V_TABLE };

/**
 * Create an empty description for @p file (used in messages; may be "<string>").
 * @return a description to free with rig_desc_free(), or NULL when out of memory.
 */
RIG_API struct rig_desc *rig_desc_new(struct rig_ctx *ctx, const char *file);
RIG_API void rig_desc_free(struct rig_desc *d);
/**
 * Set a key of the rig (@p part -1: "name", "device_type", "description") or of a part
 * (a back-end parameter). Unknown keys are reported by validation.
 * @return 0, or RIG_E_NOMEM.
 */
RIG_API int rig_desc_set_str(struct rig_desc *d, int part, const char *key, const char *v,
			     int line);
RIG_API int rig_desc_set_int(struct rig_desc *d, int part, const char *key, long long v,
			     int line);
RIG_API int rig_desc_set_bool(struct rig_desc *d, int part, const char *key, bool v, int line);
/** Record a key whose value has a type no parameter accepts (number, list, table). */
RIG_API int rig_desc_set_other(struct rig_desc *d, int part, const char *key,
			       enum rig_vtype type, int line);
/** Add a capability ("sd", "usbboot", "flasher", "serial", ...). */
RIG_API int rig_desc_add_cap(struct rig_desc *d, const char *cap, int line);
/**
 * Add a part: @p role is "power", "sdmux", "button", "console", "usbboot" or "storage";
 * @p instance names a button ("boot") and is NULL for the other roles; @p backend is the
 * back-end name ("sim", "rigfw", ...).
 * @return the part index (>= 0) for the @p part argument of the setters, or RIG_E_NOMEM.
 * Setters take part -1 for rig-level keys.
 */
RIG_API int rig_desc_add_part(struct rig_desc *d, const char *role, const char *instance,
			      const char *backend, int line);
/**
 * Record a mistake found while reading the file (reported with the others). @p line 0:
 * the file as a whole; -1: the message already says where ("file:3: ...").
 */
RIG_API void rig_desc_problem(struct rig_desc *d, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/**
 * Sorts the parts by source line (so part indices from rig_desc_add_part() are not valid
 * afterwards) and checks everything against the back-end registry: unknown roles and back-ends, missing,
 * unknown and mistyped parameters, duplicate roles, missing name.
 * @return the number of problems (0 = valid). rig_desc_problems() lists them.
 */
RIG_API int rig_desc_validate(struct rig_desc *d);
/** All problems, one per line, "file:line: message"; owned by @p d. "" when none. */
RIG_API const char *rig_desc_problems(const struct rig_desc *d);
/** The rig name, or NULL if not set. Owned by @p d. */
RIG_API const char *rig_desc_name(const struct rig_desc *d);
RIG_API const char *rig_desc_file(const struct rig_desc *d);
RIG_API const char *rig_desc_device_type(const struct rig_desc *d);
/** Capability @p i of the description, or NULL past the end. Owned by @p d. */
RIG_API const char *rig_desc_cap(const struct rig_desc *d, size_t i);

/* ----------------------------------------------------------------------------------- */
/** @name The back-end registry */

/** Roles, append-only. */
enum rig_role {
	RIG_ROLE_POWER,
	RIG_ROLE_SDMUX,
	RIG_ROLE_BUTTON,
	RIG_ROLE_CONSOLE,
	RIG_ROLE_USBBOOT,
	RIG_ROLE_STORAGE,
	RIG_ROLE_NETWORK,
	RIG_ROLE_COUNT
};

/** A role as a bit of a role set (rig_open_roles()). */
#define RIG_ROLE_BIT(role) (1u << (unsigned int)(role))
/** Every role. */
#define RIG_ROLES_ALL ((1u << RIG_ROLE_COUNT) - 1u)
/** What a command under the control lock opens: everything but the console. */
#define RIG_ROLES_CONTROL (RIG_ROLES_ALL & ~RIG_ROLE_BIT(RIG_ROLE_CONSOLE))

/** Name of a role ("power"); NULL for an out-of-range value. */
RIG_API const char *rig_role_name(enum rig_role role);
/** Role from its name; RIG_E_INVAL if unknown. */
RIG_API int rig_role_from_name(const char *name);
/**
 * Walk the registry: fills role, name and description of back-end @p i.
 * @retval 0 filled
 * @retval RIG_E_NOENT past the end
 */
RIG_API int rig_backend_info(size_t i, enum rig_role *role, const char **name,
			     const char **help);

/* ----------------------------------------------------------------------------------- */
/** @name Locking
 *
 * A rig has two locks, so that watching its console never stops anyone switching it:
 * - the *control* lock: power, SD mux, buttons, USB boot, storage and flashing;
 * - the *console* lock: reading and writing the DUT console.
 *
 * A command takes what it uses (RIG_LOCK_CONTROL, RIG_LOCK_CONSOLE); `rigor run` and
 * other exclusive users take both (RIG_LOCK_ALL). Two control users exclude each other,
 * and so do two console users (a serial port has one reader). Each lock is an flock() on
 * a file in the lock directory (rig_ctx_lock_dir()), <rig>.lock and <rig>.console.lock,
 * so the kernel drops it when the process dies and no lock goes stale; the file also
 * records its holder. The SD-mux/power interlock reads the power state persisted in the
 * state directory under the control lock, so it holds across processes.
 *
 * A *reservation* holds the whole rig across several commands: rig_reservation_acquire()
 * records a token and an owner process in <rig>.reservation; while the owner lives, only
 * callers that pass that token get either lock. The reservation ends with
 * rig_reservation_release() or when its owner exits (checked by pid and start time, so a
 * reused pid does not keep it), so it never goes stale either. A token is a handle for
 * coordination, not a secret: rig_lock_holders() shows it.
 */

struct rig_lock;

/** What a lock covers; RIG_LOCK_ALL is both. */
enum rig_lock_scope {
	RIG_LOCK_CONTROL = 1,  /**< power, mux, buttons, usbboot, storage, flash */
	RIG_LOCK_CONSOLE = 2,  /**< the DUT console */
	RIG_LOCK_ALL = 3,      /**< the whole rig (test runs, scripts) */
};

/**
 * Take the locks of rig @p name that @p scope names (the control lock first). @p who
 * describes the holder (its command line). A reserved rig is taken only with its @p token.
 * @param token the reservation's token, or NULL (or "") when the caller has none
 * @param timeout_ms how long to wait for a busy or reserved rig (-1 forever, 0 try once);
 *        the cancel flag ends the wait too. Blocks at most that long.
 * @retval 0 locked; free with rig_lock_release()
 * @retval RIG_E_BUSY held or reserved by another process; rig_ctx_errmsg() names the
 *         holder (what, pid, command, user, since), or says that @p token matches no
 *         current reservation (it was released, or its owner exited)
 * @retval RIG_E_INTR cancelled while waiting
 * @retval RIG_E_INVAL @p name cannot name a lock file (empty, or has a '/')
 * @retval RIG_E_IO the lock directory or file could not be made or opened
 * @retval RIG_E_NOMEM out of memory
 */
RIG_API int rig_lock_acquire(struct rig_ctx *ctx, const char *name, unsigned int scope,
			     const char *who, const char *token, int timeout_ms,
			     struct rig_lock **out);
/** Release and free. NULL is a no-op. */
RIG_API void rig_lock_release(struct rig_lock *lock);

/** One holder of a rig, as rig_lock_holders() reports it. */
struct rig_lock_holder {
	char what[16];         /**< "control", "console" or "reservation" */
	int pid;               /**< the holder (a reservation: its owner process) */
	unsigned int uid;      /**< the user who took it */
	char user[64];         /**< that user's name (the uid as digits if it has none) */
	char command[400];     /**< the holder's command line (a reservation: the owner's) */
	int64_t since_ms;      /**< when it was taken, wall-clock ms since the epoch */
	char token[40];        /**< a reservation's token; "" for locks */
};

/**
 * Describe who holds rig @p name: the control lock, the console lock and a live
 * reservation, in that order, at most @p max of them into @p h. Does not block; takes no
 * lock. A lock whose holder has not yet written its name reads as pid 0.
 * @return how many holders there are (0: free), or RIG_E_INVAL for a bad @p name, or
 *         RIG_E_IO when the lock directory cannot be made
 */
RIG_API int rig_lock_holders(struct rig_ctx *ctx, const char *name, struct rig_lock_holder *h,
			     size_t max);

/**
 * Reserve rig @p name for a token until @p owner_pid exits or the reservation is
 * released. Takes both locks for a moment (waiting @p timeout_ms for them, as
 * rig_lock_acquire() does) and records the reservation; the locks are free again on
 * return, for the token's holders.
 * @param owner_pid the process whose end ends the reservation (e.g. a CI job's shell)
 * @param who the owner's description (its command), recorded for rig_lock_holders()
 * @param token in: "" for a new random token, or a token to reuse (so one token can
 *        reserve several rigs, and re-reserving with it renews the owner); out: the
 *        token (at least 33 bytes)
 * @retval 0 reserved; @p token filled
 * @retval RIG_E_BUSY held, or reserved for another token by a live owner
 * @retval RIG_E_NOENT @p owner_pid is not a running process
 * @retval RIG_E_INTR cancelled while waiting
 * @retval RIG_E_IO the reservation could not be written
 */
RIG_API int rig_reservation_acquire(struct rig_ctx *ctx, const char *name, int owner_pid,
				    const char *who, int timeout_ms, char *token, size_t len);
/**
 * End the reservation of rig @p name. Does not block.
 * @param token the reservation's token; with @p force any token (ends another's)
 * @retval 0 released
 * @retval RIG_E_NOENT the rig is not reserved (never, released, or its owner exited)
 * @retval RIG_E_BUSY reserved for another token (and not @p force)
 * @retval RIG_E_IO the reservation file could not be removed
 */
RIG_API int rig_reservation_release(struct rig_ctx *ctx, const char *name, const char *token,
				    bool force);

/* ----------------------------------------------------------------------------------- */
/** @name Rigs */

struct rig;

/**
 * Open the rig a valid description describes: opens every back-end. The description
 * must outlive nothing: what the rig needs is copied.
 * @retval 0 opened; close with rig_close()
 * @retval RIG_E_INVAL the description is not valid (see rig_desc_problems())
 * @retval other a back-end failed to open; rig_ctx_errmsg() says which and why
 */
RIG_API int rig_open(struct rig_ctx *ctx, struct rig_desc *d, struct rig **out);
/**
 * Open only the parts serving the roles in @p roles (RIG_ROLE_BIT()s; RIG_ROLES_ALL is
 * rig_open()). A process that holds one of the rig's two locks opens what that lock
 * covers (RIG_ROLES_CONTROL, or RIG_ROLE_BIT(RIG_ROLE_CONSOLE)), so it leaves the other
 * part's device alone for the process that holds the other lock. rig_has_role() still
 * answers for the whole description; a call on a role left closed fails with
 * RIG_E_NOTSUP ("this command did not open its console").
 * @retval 0 opened; close with rig_close()
 * @retval RIG_E_INVAL the description is not valid (see rig_desc_problems())
 * @retval other a back-end failed to open; rig_ctx_errmsg() says which and why
 */
RIG_API int rig_open_roles(struct rig_ctx *ctx, struct rig_desc *d, unsigned int roles,
			   struct rig **out);
/** Close every back-end and free. Does not change outputs. NULL is a no-op. */
RIG_API void rig_close(struct rig *rig);
RIG_API const char *rig_name(const struct rig *rig);
RIG_API const char *rig_device_type(const struct rig *rig);
RIG_API struct rig_ctx *rig_ctx(const struct rig *rig);
/** Whether the rig declares capability @p cap. */
RIG_API bool rig_has_cap(const struct rig *rig, const char *cap);
/** Capability @p i, or NULL past the end. */
RIG_API const char *rig_cap(const struct rig *rig, size_t i);
/** Whether the rig has a part serving @p role (for buttons: any button). */
RIG_API bool rig_has_role(const struct rig *rig, enum rig_role role);
/** Back-end name serving @p role, or NULL. */
RIG_API const char *rig_backend_name(const struct rig *rig, enum rig_role role);
/** Detail of the first error on this rig since rig_clear_error(); "" when none. */
RIG_API const char *rig_errmsg(const struct rig *rig);
RIG_API void rig_clear_error(struct rig *rig);

/**
 * Put the rig in its safe state: DUT power off (and buttons released). Tries every step
 * even when one fails, and returns the first failure.
 */
RIG_API int rig_safe(struct rig *rig);

/**
 * Event sink: every state change ("power on", "sdmux host", "button boot press 200 ms")
 * and, verbatim, every console byte read are appended to @p path (created, appended),
 * one line each, "[HH:MM:SS.mmm] rig: ..." or "[HH:MM:SS.mmm] console: ...". NULL closes
 * the sink. Used for per-case logs.
 *
 * Console bytes go to the log that was open when they arrived: before switching, the
 * console output pending then is read (into the console buffer, where expect() still
 * sees it) and logged into the log being closed, or, when none is open, appended to the
 * last log this rig had. With no earlier log, it opens the new one as
 * "console (earlier): ...".
 *
 * Other writers may append to the same file (the runner does): every line starts on a
 * line of its own. A console line that is unfinished when another line is written, or
 * when the log is switched, is ended there, and its rest is logged as
 * "console (continued): ...".
 *
 * Blocks only for a console read with a zero timeout. A console read failure here is
 * not reported (the next read reports it).
 * @retval RIG_E_NOMEM out of memory
 * @retval negative errno @p path cannot be opened (the old log is closed all the same)
 */
RIG_API int rig_log_to(struct rig *rig, const char *path);
/** Callback for each event line (no newline), in addition to the log file. */
typedef void (*rig_event_cb)(void *user, const char *event);
RIG_API void rig_set_event_cb(struct rig *rig, rig_event_cb cb, void *user);

/**
 * Inject a fault into the back-end serving @p role (test back-channel; sim back-ends):
 * "fail" (calls fail with RIG_E_IO), "hang" (calls block until their timeout),
 * "gone" (the device disappears: RIG_E_NODEV), "ok" (clear).
 * @retval RIG_E_NOTSUP the back-end has no fault injection
 */
RIG_API int rig_inject(struct rig *rig, enum rig_role role, const char *button,
		       const char *fault);

/* ---- power ---- */

/** One measurement of the DUT supply. */
struct rig_power_reading {
	int mv;      /**< bus voltage, millivolts */
	int ma;      /**< current, milliamps */
};

/**
 * Switch DUT power. The front end applies `inverted` (normally-closed relays) and, when
 * switching on, waits out what remains of `min_off_ms` since the last switch-off.
 * @retval 0 done
 * @retval RIG_E_NOENT the rig has no power role
 * @retval RIG_E_TIMEOUT, RIG_E_IO, RIG_E_NODEV from the back-end
 */
RIG_API int rig_power_set(struct rig *rig, bool on);
/** Power off, wait max(@p off_ms, the rig's min_off_ms) (-1: min_off_ms), power on. */
RIG_API int rig_power_cycle(struct rig *rig, int off_ms);
/**
 * Current power state: from the back-end when it can read it back, else the state last
 * set through rigor (persisted in the state directory).
 * @retval 1 on, 0 off
 * @retval RIG_E_NOENT never set and the back-end cannot tell
 */
RIG_API int rig_power_get(struct rig *rig);
/** Measure voltage and current. @retval RIG_E_NOTSUP the back-end cannot measure */
RIG_API int rig_power_measure(struct rig *rig, struct rig_power_reading *r);

/* ---- SD mux ---- */

enum rig_mux { RIG_MUX_OFF, RIG_MUX_HOST, RIG_MUX_DUT };
RIG_API const char *rig_mux_name(enum rig_mux m);
/** @return the ::rig_mux for "off", "host", "dut", or RIG_E_INVAL. */
RIG_API int rig_mux_from_name(const char *s);
/**
 * Switch the SD mux. Interlock: switching to the host while the DUT is powered (or its
 * state is unknown) is refused with RIG_E_PERM; right after power-off the call waits
 * out the rest of `min_off_ms` so the card is idle. Waits `settle_ms` after switching.
 */
RIG_API int rig_sdmux_set(struct rig *rig, enum rig_mux m);
/** @return the ::rig_mux side, or a negative error (RIG_E_NOENT: unknown). */
RIG_API int rig_sdmux_get(struct rig *rig);

/* ---- buttons ---- */

/** Number of buttons; rig_button_name() names them in rig-file order. */
RIG_API size_t rig_button_count(const struct rig *rig);
RIG_API const char *rig_button_name(const struct rig *rig, size_t i);
/** Press button @p name for @p ms milliseconds (-1: its press_ms), then release. */
RIG_API int rig_button_press(struct rig *rig, const char *name, int ms);
/** Hold (true) or release (false) a button or boot strap. */
RIG_API int rig_button_set(struct rig *rig, const char *name, bool pressed);

/* ---- console ---- */

/**
 * Read what the console has, into the rig's console buffer, waiting up to @p timeout_ms
 * for at least one byte. Every byte is also written to the event sink and console log.
 * @return bytes added (> 0)
 * @retval RIG_E_TIMEOUT nothing arrived
 * @retval RIG_E_INTR cancelled
 */
RIG_API int rig_console_fill(struct rig *rig, int timeout_ms);
/** What is buffered and not yet consumed; valid until the next console call. */
RIG_API size_t rig_console_peek(struct rig *rig, const char **data);
/** Drop the first @p n buffered bytes (after a match). */
RIG_API void rig_console_consume(struct rig *rig, size_t n);
/** Write all of @p len bytes to the console. */
RIG_API int rig_console_write(struct rig *rig, const void *buf, size_t len, int timeout_ms);
/** A file descriptor that polls readable when console input is pending, or negative. */
RIG_API int rig_console_fd(struct rig *rig);

/* ---- USB boot ---- */

/**
 * Boot the DUT over USB, serving files from @p dir: the second stage, then whatever the
 * device asks for (a file it asks for that is not there is answered "no such file", as
 * the protocol does, and logged). Blocks until the device has what it needs (the
 * rpiboot back-end: until the second stage's file server says Done), at most
 * @p timeout_ms (-1: the part's timeout_ms). Progress goes to the rig's events.
 * @param dir boot files; NULL: the part's msd_dir from the rig file
 * @retval RIG_E_NODEV no device in USB boot mode appeared within the timeout, or it went
 *         away during a transfer
 * @retval RIG_E_TIMEOUT it did not come back after the ROM stage (re-enumeration), or
 *         stopped asking for files, within the timeout
 * @retval RIG_E_NOENT @p dir, or the second stage in it, is missing
 * @retval RIG_E_INVAL @p dir is NULL and the rig file has no msd_dir, or several boot
 *         devices are attached and the rig file does not say which
 * @retval RIG_E_IO the device stalled a transfer, or permission denied
 */
RIG_API int rig_usbboot(struct rig *rig, const char *dir, int timeout_ms);

/* ---- storage ---- */

/**
 * Resolve the flash target (block device or file) the storage role names, writing its
 * path into @p buf and, into @p why, how it was found.
 */
RIG_API int rig_storage_resolve(struct rig *rig, char *buf, size_t len, char *why,
				size_t whylen);
/**
 * rig_storage_resolve() for code about to read or write the card itself, through the
 * interlock: on a rig with an SD mux the card must be on the host side (which the mux's
 * own interlock only allows with the DUT off). Rigs without a mux (a Compute Module's
 * eMMC over USB boot) resolve as rig_storage_resolve() does.
 * @retval 0 the path is in @p buf
 * @retval RIG_E_PERM the card is on the DUT's side (or the mux is off): switch it first
 * @retval other what rig_sdmux_get() or rig_storage_resolve() return
 */
RIG_API int rig_storage_access(struct rig *rig, char *buf, size_t len, char *why,
			       size_t whylen);

/* ---- network ---- */

/**
 * Where the host reaches the DUT's SSH server: the host name or address into @p host
 * (a string for ssh's HostName: "192.168.7.20", "rigor-1234.local", "127.0.0.1") and the
 * TCP port into @p port. The back-end decides how: a fixed address, the newest lease for
 * the DUT's MAC address in a DHCP lease file, or the virtual board's forwarded port.
 * Blocks up to @p timeout_ms (-1: the part's timeout_ms) for back-ends that ask a
 * process (the virtual board).
 * @retval 0 @p host and @p port are filled in
 * @retval RIG_E_NOENT the rig has no network part, or the lease file has no lease for
 *         the DUT (yet): the DUT has not asked for an address
 * @retval RIG_E_NODEV the virtual board does not answer (not started?)
 * @retval RIG_E_TIMEOUT it did not answer within the timeout
 * @retval RIG_E_INVAL @p len is too small for the address
 */
RIG_API int rig_network_address(struct rig *rig, char *host, size_t len, int *port,
				int timeout_ms);
/**
 * The user and the private key file the rig file gives for logging in to the DUT
 * (network parts' `user`, default "root", and `identity`, default NULL: the SSH client's
 * own keys). Valid until the rig is closed; NULL when the rig has no network part.
 */
RIG_API const char *rig_network_user(const struct rig *rig);
RIG_API const char *rig_network_identity(const struct rig *rig);
/**
 * Cut (@p up false) or restore (@p up true) the DUT's uplink: its network connection
 * beyond the rig (on the virtual board the guest's only NIC, so SSH goes with it; on a
 * lab rig the rig file's `cut`/`restore` commands, or VBUS of the hub port its USB
 * network adapter is on). The part records a cut; rig_safe() restores an uplink this
 * process cut. Blocks up to @p timeout_ms (-1: the part's timeout_ms); a back-end that
 * runs a command kills it then, a hub request is abandoned then.
 * @retval 0 done (the back-end confirmed it, the command exited 0, or the hub switched)
 * @retval RIG_E_NOTSUP the rig file gives no way to do it (no `cut`/`restore` command,
 *         no `uplink_hub` port)
 * @retval RIG_E_IO the command failed (its exit status and output are in rig_errmsg()),
 *         or the hub refused the request or the port's attribute could not be written
 *         (no permission: the message names the udev rule)
 * @retval RIG_E_NODEV, RIG_E_TIMEOUT the virtual board, the command or the hub did not
 *         answer (RIG_E_NODEV: the board is not running, the hub is gone)
 */
RIG_API int rig_network_uplink(struct rig *rig, bool up, int timeout_ms);

/* ---- flashing (the flash engine itself: rig_flash.h) ---- */

struct rig_flash_opts;
struct rig_flash_stats;

/**
 * Flash @p image onto the rig's storage target, through the interlock: the DUT is
 * switched off and the SD mux to the host first (waiting out min_off_ms); afterwards the
 * mux stays on the host and the DUT off. The target is what rig_storage_resolve() names.
 *
 * A rig with a usbboot part that has msd_dir, a storage part and no SD mux (a Compute
 * Module whose eMMC is flashed over USB) goes another way: power off, hold the
 * usbboot part's boot_button (default: the button named "boot", if any), power on,
 * rig_usbboot() from msd_dir, release the button, wait (up to the usbboot part's
 * timeout_ms) for the storage part to resolve (the eMMC showing up as a USB disk),
 * flash it, and power off, on failure too. Releasing the button and powering off are
 * done after a cancel or past the case deadline as well (each bounded by its part's
 * timeout_ms), so an interrupted flash does not leave the DUT powered or strapped.
 *
 * The context's cancel flag and case deadline stop the flash promptly (RIG_E_INTR /
 * RIG_E_TIMEOUT), with how far it got in rig_errmsg().
 * @param o options from rig_flash_opts_init() (cancel and timeout are filled in here)
 * @param st filled with what was read, written, skipped and verified, even on failure
 * @retval 0 written, flushed and (unless o->verify is false) read back and compared
 * @retval RIG_E_PERM the power or mux refused; RIG_E_INVAL bad image or refused target
 * @retval RIG_E_IO, RIG_E_NODEV the target failed or vanished
 */
RIG_API int rig_flash(struct rig *rig, const char *image, struct rig_flash_opts *o,
		      struct rig_flash_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* RIGOR_HOST_RIG_H */
