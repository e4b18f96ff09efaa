/* TLS plaintext capture and process events, compiled by bcc.
 *
 * Uprobes on OpenSSL's SSL_write, SSL_write_ex, SSL_read, SSL_read_ex: the entry
 * probe saves the buffer pointer per thread, the return probe copies the bytes
 * actually transferred into the ring buffer, split into ordered segments of
 * LLMTAP_SEGMENT_BYTES. SSL_free ends a connection. The sched tracepoints report
 * exec (so user space can attach to new binaries, and with the program's path and
 * arguments, build the process tree), fork (a new process that may never exec: a
 * shell's subshell) and process exit (its exit code; in-flight exchanges of a
 * killed client are then reported with what was received).
 *
 * Set by user space at compile time:
 *   LLMTAP_SELF_PID   llmtap's own pid, never traced (its exporters speak TLS too)
 *   LLMTAP_HAVE_GROUP_DEAD  the exit tracepoint has the group_dead field (5.x+ kernels vary)
 *   LLMTAP_ARGS_BYTES  bytes of an exec'd program's arguments to copy (0: none)
 *   LLMTAP_PROCESS_FORKS  report new processes (fork without exec) too
 *   LLMTAP_OFF_*       offsets of the task_struct, cred and mm_struct fields read, from
 *                      the running kernel's BTF (receiver/ebpf/btf.py)
 *   LLMTAP_NO_BTF      the kernel has no BTF: process events carry pid, uid, cgroup and
 *                      path only (no parent, start time, exit code, arguments or forks)
 *
 * Nothing is lost silently: a failed copy or a full ring buffer is counted in
 * `drops`, and the stream offsets still advance so user space sees the gap.
 */
#include <uapi/linux/ptrace.h>
#include "llmtap_events.h"

struct ssl_call {
    u64 conn;
    u64 buf;
    u64 out_len;   /* SSL_*_ex: the size_t* that receives the byte count; 0 otherwise */
};

struct stream_key {
    u64 conn;
    u32 pid;
    u32 direction;
};

BPF_RINGBUF_OUTPUT(events, LLMTAP_RING_PAGES);
BPF_HASH(calls_write, u64, struct ssl_call, 16384);
BPF_HASH(calls_read, u64, struct ssl_call, 16384);
BPF_TABLE("lru_hash", struct stream_key, u64, stream_offsets, 65536);
BPF_PERCPU_ARRAY(scratch, struct llmtap_event, 1);
BPF_PERCPU_ARRAY(drops, u64, LLMTAP_DROP_COUNT);
/* Connections user space has ruled out (not an LLM API, a TLS server, not HTTP):
 * their bytes are not copied any more, only counted (LLMTAP_IGNORED_BYTES). */
BPF_TABLE("lru_hash", struct stream_key, u8, ignored_conns, 65536);

static __always_inline void count_drop(u32 index, u64 n) {
    u64 *value = drops.lookup(&index);
    if (value)
        *value += n;
}

static __always_inline int traced(u64 pid_tgid) {
    return (pid_tgid >> 32) != LLMTAP_SELF_PID;
}

static __always_inline int save_call(struct pt_regs *ctx, int with_out_len, int is_read) {
    u64 id = bpf_get_current_pid_tgid();
    if (!traced(id))
        return 0;
    struct ssl_call call = {};
    call.conn = PT_REGS_PARM1(ctx);
    call.buf = PT_REGS_PARM2(ctx);
    call.out_len = with_out_len ? PT_REGS_PARM4(ctx) : 0;
    if (is_read)
        calls_read.update(&id, &call);
    else
        calls_write.update(&id, &call);
    return 0;
}

/* A call's bytes are copied by `emit_segments`, which copies up to
 * LLMTAP_SEGMENTS_PER_PROG segments and then tail-calls itself for the rest: a
 * bounded loop the verifier accepts, chained up to the kernel's 33 tail calls
 * (LLMTAP_MAX_SEGMENTS = 32 × 32 fits). bcc cannot load bpf_loop callbacks. */
#define LLMTAP_SEGMENTS_PER_PROG 32

struct segment_state {
    u64 buf;
    u64 len;
    u32 next;   /* index of the next segment to copy */
};

BPF_PERCPU_ARRAY(segment_states, struct segment_state, 1);
BPF_PROG_ARRAY(segment_progs, 1);

int emit_segments(struct pt_regs *ctx) {
    u32 zero = 0;
    struct llmtap_event *ev = scratch.lookup(&zero);
    struct segment_state *st = segment_states.lookup(&zero);
    if (!ev || !st)
        return 0;
    u64 start = ev->h.stream_offset - (u64)st->next * LLMTAP_SEGMENT_BYTES;
    for (u32 i = 0; i < LLMTAP_SEGMENTS_PER_PROG; i++) {
        u64 done = (u64)st->next * LLMTAP_SEGMENT_BYTES;
        if (done >= st->len || st->next >= LLMTAP_MAX_SEGMENTS)
            break;
        st->next++;
        u64 n = st->len - done;
        if (n > LLMTAP_SEGMENT_BYTES)
            n = LLMTAP_SEGMENT_BYTES;
        /* The same value, 1..LLMTAP_SEGMENT_BYTES, in a form the verifier can bound. */
        n = ((n - 1) & (LLMTAP_SEGMENT_BYTES - 1)) + 1;
        ev->h.stream_offset = start + done;
        ev->h.data_bytes = n;
        if (bpf_probe_read_user(ev->data, n, (void *)(st->buf + done)) != 0) {
            count_drop(LLMTAP_DROP_READ_FAILED_EVENTS, 1);
            count_drop(LLMTAP_DROP_READ_FAILED_BYTES, n);
            continue;
        }
        if (events.ringbuf_output(ev, sizeof(ev->h) + n, 0) != 0) {
            count_drop(LLMTAP_DROP_RING_FULL_EVENTS, 1);
            count_drop(LLMTAP_DROP_RING_FULL_BYTES, n);
        }
    }
    u64 done = (u64)st->next * LLMTAP_SEGMENT_BYTES;
    if (done < st->len) {
        ev->h.stream_offset = start + done;
        if (st->next < LLMTAP_MAX_SEGMENTS)
            segment_progs.call(ctx, 0);
        /* Reached only when no more segments may be copied (or the tail call failed). */
        count_drop(LLMTAP_DROP_TOO_LONG_BYTES, st->len - done);
    }
    return 0;
}

/* Copy the `len` bytes the call transferred into the ring buffer as ordered segments. */
static __always_inline int emit_data(struct pt_regs *ctx, struct ssl_call *call, u64 id, u32 direction, u64 len) {
    u32 zero = 0;
    struct llmtap_event *ev = scratch.lookup(&zero);
    struct segment_state *st = segment_states.lookup(&zero);
    if (!ev || !st)
        return 0;
    struct stream_key key = {.conn = call->conn, .pid = id >> 32};
    if (ignored_conns.lookup(&key)) {
        count_drop(LLMTAP_IGNORED_BYTES, len);
        return 0;
    }
    key.direction = direction;
    u64 start = 0;
    u64 *offset = stream_offsets.lookup(&key);
    if (offset)
        start = *offset;
    u64 next = start + len;
    stream_offsets.update(&key, &next);

    ev->h.kind = LLMTAP_EV_TLS_DATA;
    ev->h.pid = id >> 32;
    ev->h.tid = (u32)id;
    ev->h.direction = direction;
    ev->h.conn = call->conn;
    ev->h.ts_ns = bpf_ktime_get_ns();
    ev->h.stream_offset = start;
    ev->h.call_bytes = len;
    bpf_get_current_comm(&ev->h.comm, sizeof(ev->h.comm));
    st->buf = call->buf;
    st->len = len;
    st->next = 0;
    segment_progs.call(ctx, 0);
    count_drop(LLMTAP_DROP_TOO_LONG_BYTES, len);  /* the tail call failed: nothing was copied */
    return 0;
}

static __always_inline int finish_call(struct pt_regs *ctx, int is_read) {
    u64 id = bpf_get_current_pid_tgid();
    struct ssl_call *call = is_read ? calls_read.lookup(&id) : calls_write.lookup(&id);
    if (!call)
        return 0;
    struct ssl_call saved = *call;
    if (is_read)
        calls_read.delete(&id);
    else
        calls_write.delete(&id);
    int ret = PT_REGS_RC(ctx);  /* both return int: the upper half of the register is not part of it */
    u64 len = 0;
    if (saved.out_len) {
        /* SSL_*_ex: 1 on success, the count in *out_len. */
        if (ret != 1)
            return 0;
        size_t transferred = 0;
        if (bpf_probe_read_user(&transferred, sizeof(transferred), (void *)saved.out_len) != 0) {
            count_drop(LLMTAP_DROP_READ_FAILED_EVENTS, 1);
            return 0;
        }
        len = transferred;
    } else {
        if (ret <= 0)
            return 0;
        len = ret;
    }
    if (len == 0)
        return 0;
    return emit_data(ctx, &saved, id, is_read ? LLMTAP_DIR_READ : LLMTAP_DIR_WRITE, len);
}

int enter_ssl_write(struct pt_regs *ctx) { return save_call(ctx, 0, 0); }
int enter_ssl_write_ex(struct pt_regs *ctx) { return save_call(ctx, 1, 0); }
int enter_ssl_read(struct pt_regs *ctx) { return save_call(ctx, 0, 1); }
int enter_ssl_read_ex(struct pt_regs *ctx) { return save_call(ctx, 1, 1); }
int return_ssl_write(struct pt_regs *ctx) { return finish_call(ctx, 0); }
int return_ssl_read(struct pt_regs *ctx) { return finish_call(ctx, 1); }

/* A header-only event, or one with a short string already in ev->data. */
static __always_inline struct llmtap_event *small_event(void) {
    u32 zero = 0;
    struct llmtap_event *ev = scratch.lookup(&zero);
    if (ev)
        __builtin_memset(&ev->h, 0, sizeof(ev->h));
    return ev;
}

static __always_inline void emit_small(struct llmtap_event *ev, u32 kind, u64 id, u64 conn, int data_bytes) {
    ev->h.kind = kind;
    ev->h.pid = id >> 32;
    ev->h.tid = (u32)id;
    ev->h.conn = conn;
    ev->h.ts_ns = bpf_ktime_get_ns();
    bpf_get_current_comm(&ev->h.comm, sizeof(ev->h.comm));
    u32 n = data_bytes > 0 ? data_bytes & (LLMTAP_PATH_BYTES * 2 - 1) : 0;
    ev->h.data_bytes = n;
    if (events.ringbuf_output(ev, sizeof(ev->h) + n, 0) != 0)
        count_drop(LLMTAP_DROP_RING_FULL_EVENTS, 1);
}

/* SSL_free: the connection is gone. The event's data is the final offsets of
 * both directions (u64 write, u64 read), so user space can tell whether bytes
 * at the end of a stream were lost. */
int enter_ssl_free(struct pt_regs *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    if (!traced(id))
        return 0;
    u64 conn = PT_REGS_PARM1(ctx);
    if (!conn)
        return 0;
    struct stream_key key = {.conn = conn, .pid = id >> 32, .direction = 0};
    ignored_conns.delete(&key);
    u64 ends[2] = {};
    int seen = 0;
    key.direction = LLMTAP_DIR_WRITE;
    u64 *offset = stream_offsets.lookup(&key);
    if (offset) {
        ends[0] = *offset;
        seen = 1;
    }
    key.direction = LLMTAP_DIR_READ;
    offset = stream_offsets.lookup(&key);
    if (offset) {
        ends[1] = *offset;
        seen = 1;
    }
    if (!seen)
        return 0;  /* never carried data: nothing for user space to close */
    struct llmtap_event *ev = small_event();
    if (!ev)
        return 0;
    __builtin_memcpy(ev->data, ends, sizeof(ends));
    stream_offsets.delete(&key);
    key.direction = LLMTAP_DIR_WRITE;
    stream_offsets.delete(&key);
    emit_small(ev, LLMTAP_EV_TLS_FREE, id, conn, 16);
    return 0;
}

/* --- Process events --------------------------------------------------------------
 * Task fields are read at offsets user space took from the running kernel's BTF
 * (LLMTAP_OFF_*), not from the headers bcc compiles with, which may be another
 * kernel's. */

static __always_inline u64 task_u64(const void *task, u32 off) {
    u64 v = 0;
    bpf_probe_read_kernel(&v, sizeof(v), (const char *)task + off);
    return v;
}

static __always_inline u32 task_u32(const void *task, u32 off) {
    u32 v = 0;
    bpf_probe_read_kernel(&v, sizeof(v), (const char *)task + off);
    return v;
}

static __always_inline void *task_ptr(const void *task, u32 off) {
    return (void *)task_u64(task, off);
}

/* The leader's start time: a process's, whichever of its threads is at hand. */
static __always_inline u64 process_start(const void *task) {
    return task_u64(task_ptr(task, LLMTAP_OFF_TASK_GROUP_LEADER), LLMTAP_OFF_TASK_START_BOOTTIME);
}

/* Fill the header and the ids of `task` (a thread group leader or any of its threads). */
static __always_inline struct llmtap_process *process_event(struct llmtap_event *ev, u32 kind, const void *task) {
    __builtin_memset(&ev->h, 0, sizeof(ev->h));
    struct llmtap_process *p = (struct llmtap_process *)ev->data;
    __builtin_memset(p, 0, sizeof(*p) - LLMTAP_PATH_BYTES);
    ev->h.kind = kind;
    ev->h.ts_ns = bpf_ktime_get_ns();
    bpf_get_current_comm(&ev->h.comm, sizeof(ev->h.comm));
    p->cgroup_id = bpf_get_current_cgroup_id();  /* a forked child is in its parent's cgroup */
#ifdef LLMTAP_NO_BTF
    /* No field offsets: only what the helpers tell of the current task (exec and exit run in it). */
    u64 id = bpf_get_current_pid_tgid();
    ev->h.pid = id >> 32;
    ev->h.tid = (u32)id;
    p->uid = (u32)bpf_get_current_uid_gid();
#else
    ev->h.pid = task_u32(task, LLMTAP_OFF_TASK_TGID);
    ev->h.tid = task_u32(task, LLMTAP_OFF_TASK_PID);
    void *parent = task_ptr(task, LLMTAP_OFF_TASK_REAL_PARENT);
    p->ppid = task_u32(parent, LLMTAP_OFF_TASK_TGID);
    p->start_ns = process_start(task);
    p->parent_start_ns = process_start(parent);
    p->uid = task_u32(task_ptr(task, LLMTAP_OFF_TASK_REAL_CRED), LLMTAP_OFF_CRED_EUID);
#endif
    return p;
}

/* Without a wakeup: user space collects process events when it next polls (within its poll
 * interval). Waking the reader costs an interrupt and a cross-CPU wakeup per event (~20 µs in a
 * KVM guest, where each IPI exits to the hypervisor), which an exec-heavy workload pays three times
 * per command. */
static __always_inline void emit_process(struct llmtap_event *ev, u32 data_bytes) {
    ev->h.data_bytes = data_bytes;
    if (events.ringbuf_output(ev, sizeof(ev->h) + data_bytes, BPF_RB_NO_WAKEUP) != 0)
        count_drop(LLMTAP_DROP_PROC_RING_FULL_EVENTS, 1);
}

#define PROCESS_IDS_BYTES (sizeof(struct llmtap_process) - LLMTAP_PATH_BYTES)

TRACEPOINT_PROBE(sched, sched_process_exec) {
    u32 zero = 0;
    struct llmtap_event *ev = scratch.lookup(&zero);
    if (!ev)
        return 0;
    void *task = (void *)bpf_get_current_task();
    struct llmtap_process *p = process_event(ev, LLMTAP_EV_PROC_EXEC, task);
    unsigned short loc = args->data_loc_filename & 0xFFFF;
    int n = bpf_probe_read_kernel_str(p->path, LLMTAP_PATH_BYTES, (void *)args + loc);
    p->path_bytes = n > 0 ? n : 0;
    u32 data_bytes = sizeof(struct llmtap_process);
#if LLMTAP_ARGS_BYTES > 0
    /* The new image's argument area: argv as NUL-separated strings, bounded. */
    void *mm = task_ptr(task, LLMTAP_OFF_TASK_MM);
    u64 arg_start = task_u64(mm, LLMTAP_OFF_MM_ARG_START);
    u64 arg_end = task_u64(mm, LLMTAP_OFF_MM_ARG_END);
    u64 total = arg_end > arg_start ? arg_end - arg_start : 0;
    p->args_total = total;
    u32 len = total < LLMTAP_ARGS_BYTES ? total : LLMTAP_ARGS_BYTES;
    if (len > 0 && len <= LLMTAP_ARGS_BYTES) {
        if (bpf_probe_read_user(ev->data + sizeof(struct llmtap_process), len, (void *)arg_start) == 0) {
            p->args_bytes = len;
            data_bytes += len;
        } else {
            count_drop(LLMTAP_DROP_PROC_ARGS_READ_FAILED, 1);
        }
    }
#endif
    emit_process(ev, data_bytes);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit) {
    u64 id = bpf_get_current_pid_tgid();
#ifdef LLMTAP_HAVE_GROUP_DEAD
    if (!args->group_dead)
        return 0;
#else
    if ((u32)id != (id >> 32))
        return 0;
#endif
    u32 zero = 0;
    struct llmtap_event *ev = scratch.lookup(&zero);
    if (!ev)
        return 0;
    void *task = (void *)bpf_get_current_task();
    struct llmtap_process *p = process_event(ev, LLMTAP_EV_PROC_EXIT, task);
#ifndef LLMTAP_NO_BTF
    /* The last thread out: its exit code is the group's (exit_group, or the signal that killed it). */
    p->exit_code = task_u32(task, LLMTAP_OFF_TASK_EXIT_CODE);
#endif
    emit_process(ev, PROCESS_IDS_BYTES);
    return 0;
}

#ifdef LLMTAP_PROCESS_FORKS
/* A raw tracepoint, for the child's task_struct (the plain one names only pids, threads included):
 * args[0] is the parent, args[1] the child. New threads are not processes and are skipped. */
RAW_TRACEPOINT_PROBE(sched_process_fork) {
    void *child = (void *)ctx->args[1];
    if (task_u32(child, LLMTAP_OFF_TASK_PID) != task_u32(child, LLMTAP_OFF_TASK_TGID))
        return 0;
    u32 zero = 0;
    struct llmtap_event *ev = scratch.lookup(&zero);
    if (!ev)
        return 0;
    process_event(ev, LLMTAP_EV_PROC_FORK, child);
    emit_process(ev, PROCESS_IDS_BYTES);
    return 0;
}
#endif
