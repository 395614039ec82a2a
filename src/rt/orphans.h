/*
 * rt/orphans.h - no tool keeps running unattended: the gateway adopts what the runtimes'
 * tools leave behind, and ends it.
 *
 * An agent's bash may start a job in the background (`cmd &`, nohup, setsid) and return;
 * the runtime runs each command in a session of its own, so a runtime that dies leaves its
 * running commands and MCP servers behind too.  Such orphans would be reparented to init and
 * run on, out of sight of the policy, the audit and the operator.  orphans_start() makes
 * the gateway their reaper (Linux PR_SET_CHILD_SUBREAPER: the orphans of its descendants
 * become its children) and, every ORPHANS_SCAN_MS, ends each child of the gateway that is
 * not one of its runtimes (SIGKILL, logged at warn with its pid and command name) and reaps
 * it.  The runtimes' own children (running commands, async shells, MCP servers) are not
 * orphans while their runtime lives.
 *
 * Threading: the event loop's thread only.  The runtimes are registered by rt.c
 * (orphans_own / orphans_disown) between fork and reap.
 */
#ifndef GW_RT_ORPHANS_H
#define GW_RT_ORPHANS_H

#include <sys/types.h>

#include <event2/event.h>

#define ORPHANS_SCAN_MS 1000

/* Becomes the subreaper and starts scanning; 0, or -1 when the kernel refuses (logged). */
int orphans_start(struct event_base *base);
void orphans_stop(void);

/* A child the gateway started and waits for itself (a runtime): never ended here. */
void orphans_own(pid_t pid);
void orphans_disown(pid_t pid);

/* Orphans ended since start (for tests and /metrics). */
unsigned long long orphans_ended(void);

#endif
