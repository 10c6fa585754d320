// The page's pure logic: URL state, filters, the tracker's live list, the launch form, the flow
// layout and the Gantt bars. No React and no network here, so Vitest tests it directly.
import dagre from "@dagrejs/dagre";
import { EVENT_TYPES, MISSION_STATUSES, TERMINAL_JOB_STATUSES, TERMINAL_MISSION_STATUSES } from "./statuses";
import type {
  DepartmentGraph,
  FieldProblem,
  JobStatus,
  MissionApproval,
  MissionEvent,
  MissionSummary,
  PlannedGate,
  Template,
} from "./types";

export const isTerminal = (status: string): boolean => TERMINAL_MISSION_STATUSES.has(status);

// --- URL state: filters and the open mission survive a reload and travel in a shared link ---

export interface UrlState {
  sector: string;
  q: string;
  status: string;
  template: string;
  mission: string;
}

const URL_KEYS: (keyof UrlState)[] = ["sector", "q", "status", "template", "mission"];

export function readUrl(search: string): UrlState {
  const params = new URLSearchParams(search);
  const state = { sector: "", q: "", status: "", template: "", mission: "" };
  for (const key of URL_KEYS) state[key] = params.get(key) ?? "";
  if (state.status && !(MISSION_STATUSES as readonly string[]).includes(state.status)) state.status = "";
  return state;
}

export function writeUrl(state: UrlState): string {
  const params = new URLSearchParams();
  for (const key of URL_KEYS) if (state[key]) params.set(key, state[key]);
  const text = params.toString();
  return text ? `?${text}` : "";
}

// --- Mission Library Grid ---

export function sectorsOf(templates: Template[]): string[] {
  return [...new Set(templates.map((t) => t.sector))].sort((a, b) => a.localeCompare(b));
}

export function filterTemplates(templates: Template[], sector: string, query: string): Template[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  return templates.filter((t) => {
    if (sector && t.sector.toLowerCase() !== sector.toLowerCase()) return false;
    const text = [t.id, t.name, t.goal, t.sector, ...t.departments].join(" ").toLowerCase();
    return words.every((w) => text.includes(w));
  });
}

// --- Active Mission Tracker ---

export interface TrackerFilter {
  status: string;
  template: string;
}

export function matches(m: MissionSummary, filter: TrackerFilter): boolean {
  return (!filter.status || m.status === filter.status) && (!filter.template || m.templateId === filter.template);
}

/** The list after one live update: replaced in place, added in createdAt order (newest first),
 * or dropped when it no longer matches the filter. The same list back when nothing changed. */
export function applyUpdate(
  list: MissionSummary[],
  update: MissionSummary,
  filter: TrackerFilter,
  morePages = false,
): MissionSummary[] {
  const index = list.findIndex((m) => m.id === update.id);
  if (!matches(update, filter)) {
    return index < 0 ? list : list.filter((_, i) => i !== index);
  }
  if (index >= 0) {
    const next = list.slice();
    next[index] = update;
    return next;
  }
  // A mission older than the last one listed belongs to a later page: leave it to paging.
  const last = list[list.length - 1];
  if (morePages && last && update.createdAt < last.createdAt) return list;
  const at = list.findIndex((m) => m.createdAt < update.createdAt);
  const next = list.slice();
  next.splice(at < 0 ? next.length : at, 0, update);
  return next;
}

export function budgetFraction(spent: string, allocated: string): number {
  const a = Number(allocated);
  const s = Number(spent);
  if (!(a > 0) || !Number.isFinite(s)) return 0;
  return Math.min(1, Math.max(0, s / a));
}

export function formatSeconds(total: number): string {
  const s = Math.max(0, Math.floor(total));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

/** A run's length: milliseconds under a second, else seconds and minutes. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatSeconds(ms / 1000);
}

/** What the tracker shows in its "Time left" column. */
export function timeLeft(deadline: string, status: string, now: number): string {
  if (isTerminal(status)) return "ended";
  const left = (Date.parse(deadline) - now) / 1000;
  if (Number.isNaN(left)) return "—";
  return left <= 0 ? "due now" : formatSeconds(left);
}

export function jobsDone(jobs: { status: JobStatus }[]): { done: number; total: number } {
  return { done: jobs.filter((j) => TERMINAL_JOB_STATUSES.has(j.status)).length, total: jobs.length };
}

// --- Approval gates ---

/** Whether the gate waits for a person now (the mission is AWAITING_APPROVAL). */
export function awaitsDecision(m: { approval: MissionApproval | null }): boolean {
  return m.approval?.state === "PENDING";
}

function listed(departments: string[]): string {
  return departments.join(", ") || "the gated departments";
}

/** What the launch dialog says of a deploy that would wait at the approval gate. */
export function plannedGateText(gate: PlannedGate): string {
  const then = gate.onTimeout === "approve" ? "approved" : "rejected";
  const wait = gate.before.length > 1 ? "wait" : "waits";
  return `Needs approval: ${listed(gate.before)} ${wait} for a decision once upstream succeeds (${formatSeconds(gate.timeout)}, then ${then} by the timeout)`;
}

/** One line about the gate: who waits and for how long, or the decision once taken. */
export function gateText(approval: MissionApproval, now: number): string {
  const who = listed(approval.departments);
  const by = (verb: string) => `${verb} by ${approval.decidedBy ?? "the timeout"}`;
  const said = approval.comment ? `: “${approval.comment}”` : "";
  switch (approval.state) {
    case "NOT_REACHED":
      return `${who}: a decision will be needed once upstream succeeds`;
    case "PENDING": {
      const waits = `${who} ${approval.departments.length > 1 ? "wait" : "waits"} for a decision`;
      const left = approval.deadline ? (Date.parse(approval.deadline) - now) / 1000 : Number.NaN;
      if (Number.isNaN(left)) return waits;
      const then = approval.onTimeout === "approve" ? "approved" : "rejected";
      return left <= 0 ? `${waits}: its timeout decides now` : `${waits}: ${formatSeconds(left)} left, then ${then}`;
    }
    case "APPROVED":
      return `${by("Approved")}${said}`;
    case "REJECTED":
      return `${by("Rejected")}${said}`;
    case "TIMED_OUT":
      return `No decision in time: ${approval.approved ? "approved" : "rejected"} by the timeout`;
    case "WITHDRAWN":
      return "Withdrawn: the mission ended before a decision";
    default:
      return approval.state;
  }
}

export type Decision = "approve" | "reject";

/** What the person typed, refused before sending when a reject has no reason. */
export function decisionProblem(decision: Decision, text: string): string {
  return decision === "reject" && !text.trim() ? "Say why: a rejection needs a reason." : "";
}

export interface DecisionAnswer<M> {
  __typename: string;
  mission?: M;
  message?: string;
  state?: string;
}

/** What the page does with an answer to approveMission / rejectMission: show the mission as it is
 * now (decided), read it again because someone else or the timeout decided first (stale), or say
 * why not (denied, missing). */
export type DecisionResult<M> =
  | { kind: "decided"; mission: M; message: string }
  | { kind: "stale" | "denied" | "missing"; message: string };

export function decisionResult<M>(answer: DecisionAnswer<M>, missionId: string): DecisionResult<M> {
  switch (answer.__typename) {
    case "MissionApproved":
    case "MissionRejected":
      if (answer.mission) {
        const what = answer.__typename === "MissionApproved" ? "Approved: the gated departments run now." : "Rejected: the gated departments are skipped.";
        return { kind: "decided", mission: answer.mission, message: what };
      }
      break;
    case "NotAwaitingApproval": {
      const state = answer.state ? ` (${answer.state})` : "";
      return {
        kind: "stale",
        message: `Not awaiting a decision any more${state}: someone else or the timeout decided first. Shown as it is now.`,
      };
    }
    case "ApprovalDenied":
      return { kind: "denied", message: answer.message || "You may not decide this approval." };
    case "MissionNotFound":
      return { kind: "missing", message: `No mission ${missionId} (or it belongs to another tenant).` };
  }
  return { kind: "denied", message: answer.message || `Unexpected answer: ${answer.__typename}` };
}

/** The short note on a gated department's node in the flow. */
export function gateNote(approval: MissionApproval): string {
  const by = approval.decidedBy ?? "the timeout";
  switch (approval.state) {
    case "PENDING":
      return "Awaits approval";
    case "APPROVED":
      return `Approved by ${by}`;
    case "REJECTED":
      return `Rejected by ${by}`;
    case "TIMED_OUT":
      return `Timed out: ${approval.approved ? "approved" : "rejected"}`;
    case "WITHDRAWN":
      return "Gate withdrawn";
    default:
      return "Approval gate";
  }
}

const GATE_EVENTS: ReadonlySet<string> = new Set([
  EVENT_TYPES.APPROVAL_REQUESTED,
  EVENT_TYPES.APPROVAL_GRANTED,
  EVENT_TYPES.APPROVAL_REJECTED,
  EVENT_TYPES.APPROVAL_TIMED_OUT,
  EVENT_TYPES.JOB_AWAITING_APPROVAL,
]);

/** The event types the log marks as the gate's. */
export function isApprovalEvent(type: string): boolean {
  return GATE_EVENTS.has(type);
}

// --- Launch Configuration Modal ---

export interface LaunchForm {
  budget: string;
  ttl: string;
  riskLevel: string;
  maxDrawdown: string;
  inputs: string;
}

export type FormField = keyof LaunchForm | "form";

export function formDefaults(t: Template): LaunchForm {
  return {
    budget: String(t.defaults.budget),
    ttl: String(t.defaults.ttl),
    riskLevel: t.defaults.risk.level,
    maxDrawdown: t.defaults.risk.maxDrawdown == null ? "" : String(t.defaults.risk.maxDrawdown),
    inputs: JSON.stringify(t.defaults.inputs ?? {}, null, 2),
  };
}

export interface MissionConfigInput {
  budget?: string;
  ttl?: number;
  risk?: { level?: string; maxDrawdown?: number };
  inputs?: unknown;
}

/** The form as a `MissionConfigInput`, or the problems the page can tell without asking the API
 * (numbers that are not numbers, JSON that does not parse). Range checks are the API's. */
export function toConfig(form: LaunchForm): { config: MissionConfigInput; problems: FieldProblem[] } {
  const problems: FieldProblem[] = [];
  const config: MissionConfigInput = {};
  if (form.budget.trim()) config.budget = form.budget.trim();
  if (form.ttl.trim()) {
    const ttl = Number(form.ttl);
    if (Number.isInteger(ttl)) config.ttl = ttl;
    else problems.push({ field: "ttl", message: "must be whole seconds" });
  }
  const risk: { level?: string; maxDrawdown?: number } = {};
  if (form.riskLevel) risk.level = form.riskLevel;
  if (form.maxDrawdown.trim()) {
    const value = Number(form.maxDrawdown);
    if (Number.isFinite(value)) risk.maxDrawdown = value;
    else problems.push({ field: "risk.maxDrawdown", message: "must be a number between 0 and 1" });
  }
  if (Object.keys(risk).length) config.risk = risk;
  if (form.inputs.trim()) {
    try {
      const inputs: unknown = JSON.parse(form.inputs);
      if (inputs === null || typeof inputs !== "object" || Array.isArray(inputs)) {
        problems.push({ field: "inputs", message: "must be a JSON object" });
      } else {
        config.inputs = inputs;
      }
    } catch (err) {
      problems.push({ field: "inputs", message: `not JSON: ${(err as Error).message}` });
    }
  }
  return { config, problems };
}

const FIELD_OF: Record<string, FormField> = {
  budget: "budget",
  ttl: "ttl",
  risk: "riskLevel",
  "risk.level": "riskLevel",
  "risk.maxDrawdown": "maxDrawdown",
  "risk.max_drawdown": "maxDrawdown",
  inputs: "inputs",
};

/** `InvalidConfig` problems by the form field they belong beside ("form" for the rest). */
export function problemsByField(problems: FieldProblem[]): Partial<Record<FormField, string[]>> {
  const out: Partial<Record<FormField, string[]>> = {};
  for (const p of problems) {
    const field = FIELD_OF[p.field] ?? (p.field.startsWith("inputs") ? "inputs" : "form");
    (out[field] ??= []).push(field === "form" ? `${p.field}: ${p.message}` : p.message);
  }
  return out;
}

export function newIdempotencyKey(): string {
  return `ui-${crypto.randomUUID()}`;
}

// --- Visual Mission Flow ---

export const NODE_WIDTH = 230;
export const ROW_HEIGHT = 22;
export const NODE_BASE_HEIGHT = 44;

export interface Placed {
  department: string;
  x: number;
  y: number;
  height: number;
}

/** Departments laid out by stage (dagre; left to right, or top down on narrow screens), each node as
 * tall as its agent list. */
export function layoutGraph(
  graph: DepartmentGraph,
  agentsPerDepartment: Record<string, number>,
  direction: "LR" | "TB" = "LR",
): Placed[] {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: direction, nodesep: 24, ranksep: direction === "LR" ? 70 : 40, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  const heights: Record<string, number> = {};
  for (const node of graph.nodes) {
    const rows = agentsPerDepartment[node.department] ?? node.roles.length;
    heights[node.department] = NODE_BASE_HEIGHT + rows * ROW_HEIGHT;
    g.setNode(node.department, { width: NODE_WIDTH, height: heights[node.department] });
  }
  for (const edge of graph.edges) g.setEdge(edge.from, edge.to);
  dagre.layout(g);
  return graph.nodes.map((node) => {
    const placed = g.node(node.department);
    const height = heights[node.department];
    return { department: node.department, x: placed.x - NODE_WIDTH / 2, y: placed.y - height / 2, height };
  });
}

/** Appends an event unless it was already seen (a replay after a reconnect). */
export function appendEvent(events: MissionEvent[], event: MissionEvent): MissionEvent[] {
  const last = events[events.length - 1];
  if (last && event.seq <= last.seq) return events;
  return [...events, event];
}

export interface Bar {
  jobId: string;
  role: string;
  attempt: number;
  start: number;
  end: number | null; // null: still running
  outcome: string; // RUNNING, SUCCEEDED, FAILED, RETRYING, QUEUED (requeued), CANCELLED, EXPIRED
}

const ENDS_A_RUN: ReadonlySet<string> = new Set([
  EVENT_TYPES.JOB_SUCCEEDED,
  EVENT_TYPES.JOB_FAILED,
  EVENT_TYPES.JOB_RETRYING,
  EVENT_TYPES.JOB_REQUEUED,
  EVENT_TYPES.JOB_CANCELLED,
  EVENT_TYPES.JOB_EXPIRED,
]);

function attemptOf(data: unknown): number {
  if (data && typeof data === "object" && "attempt" in data) {
    const value = (data as { attempt: unknown }).attempt;
    if (typeof value === "number") return value;
  }
  return 0;
}

/** One bar per run of a job (retries are separate bars), from the event log. */
export function ganttBars(events: MissionEvent[]): Bar[] {
  const bars: Bar[] = [];
  const open = new Map<string, Bar>();
  for (const e of events) {
    if (!e.jobId) continue;
    const at = Date.parse(e.at);
    if (e.type === EVENT_TYPES.JOB_STARTED) {
      const bar: Bar = {
        jobId: e.jobId,
        role: e.jobId.slice(e.jobId.lastIndexOf(":") + 1),
        attempt: attemptOf(e.data) || bars.filter((b) => b.jobId === e.jobId).length + 1,
        start: at,
        end: null,
        outcome: "RUNNING",
      };
      open.set(e.jobId, bar);
      bars.push(bar);
    } else if (ENDS_A_RUN.has(e.type)) {
      const bar = open.get(e.jobId);
      if (bar) {
        bar.end = at;
        bar.outcome = e.status;
        open.delete(e.jobId);
      }
    }
  }
  return bars;
}

/** Where bars fall on a 0..1 axis between the first start and the last end (or now). */
export function ganttScale(bars: Bar[], now: number): { from: number; to: number } {
  if (!bars.length) return { from: now, to: now + 1 };
  const from = Math.min(...bars.map((b) => b.start));
  const to = Math.max(...bars.map((b) => b.end ?? now), from + 1);
  return { from, to };
}
