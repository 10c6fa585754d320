// Generated from mission/models.py by `make schema` (server/ui_statuses.py): do not edit.

/** Where a mission is in its life. */
export const MISSION_STATUSES = ["QUEUED", "RUNNING", "AWAITING_APPROVAL", "SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"] as const;
export type MissionStatus = (typeof MISSION_STATUSES)[number];

/** Where one agent's job is. */
export const JOB_STATUSES = ["WAITING", "AWAITING_APPROVAL", "QUEUED", "RUNNING", "RETRYING", "SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED", "EXPIRED"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Where a mission's approval gate is. */
export const APPROVAL_STATES = ["NOT_REACHED", "PENDING", "APPROVED", "REJECTED", "TIMED_OUT", "WITHDRAWN"] as const;
export type ApprovalState = (typeof APPROVAL_STATES)[number];

/** A mission in one of these has ended. */
export const TERMINAL_MISSION_STATUSES: ReadonlySet<string> = new Set<MissionStatus>(["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"]);

/** A job in one of these has ended. */
export const TERMINAL_JOB_STATUSES: ReadonlySet<string> = new Set<JobStatus>(["SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED", "EXPIRED"]);

/** Every type of event in a mission's log. */
export const EVENT_TYPES = {
  MISSION_DEPLOYED: "mission.deployed",
  MISSION_STARTED: "mission.started",
  MISSION_SUCCEEDED: "mission.succeeded",
  MISSION_FAILED: "mission.failed",
  MISSION_CANCELLED: "mission.cancelled",
  MISSION_EXPIRED: "mission.expired",
  JOB_AWAITING_APPROVAL: "job.awaiting_approval",
  JOB_QUEUED: "job.queued",
  JOB_STARTED: "job.started",
  JOB_SPENT: "job.spent",
  JOB_PROGRESS: "job.progress",
  JOB_LLM_CALL: "job.llm_call",
  JOB_SUCCEEDED: "job.succeeded",
  JOB_RETRYING: "job.retrying",
  JOB_REQUEUED: "job.requeued",
  JOB_FAILED: "job.failed",
  JOB_SKIPPED: "job.skipped",
  JOB_CANCELLED: "job.cancelled",
  JOB_EXPIRED: "job.expired",
  APPROVAL_REQUESTED: "approval.requested",
  APPROVAL_GRANTED: "approval.granted",
  APPROVAL_REJECTED: "approval.rejected",
  APPROVAL_TIMED_OUT: "approval.timed_out",
} as const;
