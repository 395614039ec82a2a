/*
 * agent/agent.h - runs agents: the permission decider and the hooks of their
 * sessions (broker/profile.h struct profile_ops), deciding every tool call with
 * the agent's policy (policy/policy.h) and recording every decision and
 * outcome in the audit log (store/store.h, audit domain).
 *
 * How a tool call is decided.  Agent sessions are created with hooks and
 * requestPermission on (agent/config.h).  The runtime sends preToolUse before
 * every tool call, built-in and MCP alike (runtime-requests.md): the answer is
 * {permissionDecision: "allow"} or {"deny", permissionDecisionReason: "denied by
 * policy: shell(rm)"}; a denied call never runs and the model gets that reason as
 * the tool's error.  Calls of tools the client declared are not decided (they go
 * back to the client).  A sub-agent's calls (delegation) are decided by the
 * delegate's own policy; a call whose sub-agent cannot be placed is denied.  A
 * permission prompt that still comes (the hook's allow normally settles it) is
 * decided the same way: approve-once or reject, never a standing approval.
 * postToolUse / postToolUseFailure complete the decision's audit row with the
 * outcome and the duration.
 *
 * Ownership: agent_runner_new() borrows agents and store (both outlive it) and
 *   sets every agent's profile.ops/ops_ud to itself; agent_runner_free() after
 *   the broker is freed.
 * Threading: event-loop thread only.
 */
#ifndef GW_AGENT_AGENT_H
#define GW_AGENT_AGENT_H

#include "agent/config.h"

struct store;
struct agent_runner;

/* store may be NULL (no audit log: decisions are only logged). */
struct agent_runner *agent_runner_new(struct agents *agents, struct store *store);
void agent_runner_free(struct agent_runner *r);

/* Decisions made since start, one per audit row (for /metrics). */
void agent_runner_stats(const struct agent_runner *r, uint64_t *allowed, uint64_t *denied);

#endif
