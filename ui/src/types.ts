// The shapes the page reads from the API (see schema.graphql at the repository's root).

import type { ApprovalState, JobStatus, MissionStatus } from "./statuses";

export type { ApprovalState, JobStatus, MissionStatus };

export interface Risk {
  level: string;
  maxDrawdown: number | null;
}

export interface Template {
  id: string;
  name: string;
  goal: string;
  sector: string;
  departments: string[];
  squad: { role: string; department: string; agent: string; budgetShare: number | null }[];
  defaults: { budget: string; ttl: number; risk: Risk; inputs: unknown };
  limits: { budget: { min: string; max: string }; ttl: { min: number; max: number } };
}

export interface Budget {
  allocated: string;
  spent: string;
  remaining: string;
}

export interface MissionSummary {
  id: string;
  templateId: string;
  status: MissionStatus;
  createdAt: string;
  deadline: string;
  finishedAt: string | null;
  failureReason: string | null;
  budget: Budget;
  template: { name: string } | null;
  jobs: { status: JobStatus }[];
  approval: MissionApproval | null;
  canDecide: boolean;
}

/** The approval gate a deploy would wait at (the dry-run plan's `approval`). */
export interface PlannedGate {
  before: string[];
  timeout: number;
  onTimeout: string;
}

/** A mission's approval gate and, once taken, its decision. */
export interface MissionApproval {
  state: ApprovalState;
  departments: string[];
  onTimeout: string;
  requestedAt: string | null;
  deadline: string | null;
  decidedAt: string | null;
  decidedBy: string | null;
  comment: string | null;
  approved: boolean | null;
}

export interface Job {
  id: string;
  department: string;
  role: string;
  agent: string;
  status: JobStatus;
  attempts: number;
  progress: number;
  message: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  budget: Budget;
  output: unknown;
}

export interface DepartmentGraph {
  nodes: { department: string; roles: string[]; status: JobStatus | null }[];
  edges: { from: string; to: string }[];
  stages: string[][];
}

export interface MissionDetail extends Omit<MissionSummary, "jobs"> {
  config: { budget: string; ttl: number; risk: Risk; inputs: unknown };
  jobs: Job[];
  graph: DepartmentGraph;
}

export interface MissionEvent {
  seq: number;
  missionId: string;
  type: string;
  status: string;
  jobId: string | null;
  at: string;
  message: string;
  data: unknown;
}

export interface FieldProblem {
  field: string;
  message: string;
}

export interface PlannedAgent {
  role: string;
  department: string;
  agent: string;
  stage: number;
  allocated: string;
}

export interface Viewer {
  tenant: string;
  role: string;
  canOperate: boolean;
}

/** Something the page asked the API for: loading, there, or refused with a reason. */
export type Load<T> =
  | { state: "loading" }
  | { state: "ready"; value: T }
  | { state: "error"; message: string; refused: boolean };
