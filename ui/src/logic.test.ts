import { describe, expect, it } from "vitest";
import {
  appendEvent,
  applyUpdate,
  awaitsDecision,
  budgetFraction,
  decisionProblem,
  decisionResult,
  filterTemplates,
  formDefaults,
  formatDuration,
  ganttBars,
  gateNote,
  gateText,
  isApprovalEvent,
  isTerminal,
  jobsDone,
  plannedGateText,
  layoutGraph,
  problemsByField,
  readUrl,
  sectorsOf,
  timeLeft,
  toConfig,
  writeUrl,
} from "./logic";
import { JOB_STATUSES, MISSION_STATUSES } from "./statuses";
import type { MissionApproval, MissionEvent, MissionSummary, Template } from "./types";

const template = (id: string, name: string, sector: string, departments: string[]): Template => ({
  id,
  name,
  goal: `${name} goal`,
  sector,
  departments,
  squad: [],
  defaults: { budget: "1000.00", ttl: 600, risk: { level: "high", maxDrawdown: 0.2 }, inputs: { a: 1 } },
  limits: { budget: { min: "100.00", max: "50000.00" }, ttl: { min: 30, max: 7200 } },
});

const TEMPLATES = [
  template("mission_001", "M&A Scout", "Wealth", ["Intelligence", "Wealth"]),
  template("mission_002", "Crash Protocol", "Finance", ["Security", "Finance"]),
  template("mission_003", "Shadow Mirror", "Security", ["Recon", "Probe"]),
];

const mission = (id: string, createdAt: string, status = "RUNNING", templateId = "mission_002"): MissionSummary => ({
  id,
  templateId,
  status: status as MissionSummary["status"],
  createdAt,
  deadline: "2026-01-01T00:10:00Z",
  finishedAt: null,
  failureReason: null,
  budget: { allocated: "100.00", spent: "0.00", remaining: "100.00" },
  template: { name: "Crash Protocol" },
  jobs: [],
  approval: null,
  canDecide: false,
});

const gate = (patch: Partial<MissionApproval> = {}): MissionApproval => ({
  state: "PENDING",
  departments: ["Finance"],
  onTimeout: "reject",
  requestedAt: "2026-01-01T00:00:00Z",
  deadline: "2026-01-01T00:05:00Z",
  decidedAt: null,
  decidedBy: null,
  comment: null,
  approved: null,
  ...patch,
});

const event = (seq: number, type: string, jobId: string | null, at: number, status = "RUNNING", data: unknown = null) =>
  ({ seq, missionId: "m", type, status, jobId, at: new Date(at).toISOString(), message: "", data }) as MissionEvent;

describe("URL state", () => {
  it("round-trips filters and drops empty ones", () => {
    const state = { sector: "Finance", q: "crash", status: "RUNNING", template: "", mission: "" };
    expect(writeUrl(state)).toBe("?sector=Finance&q=crash&status=RUNNING");
    expect(readUrl(writeUrl(state))).toEqual(state);
    expect(writeUrl({ sector: "", q: "", status: "", template: "", mission: "" })).toBe("");
  });
  it("ignores an unknown status", () => {
    expect(readUrl("?status=BOGUS&q=x").status).toBe("");
  });
});

describe("library filters", () => {
  it("filters by sector, case-insensitively", () => {
    expect(filterTemplates(TEMPLATES, "finance", "").map((t) => t.id)).toEqual(["mission_002"]);
  });
  it("searches name, goal, sector and departments; every word must match", () => {
    expect(filterTemplates(TEMPLATES, "", "scout").map((t) => t.id)).toEqual(["mission_001"]);
    expect(filterTemplates(TEMPLATES, "", "security").map((t) => t.id)).toEqual(["mission_002", "mission_003"]);
    expect(filterTemplates(TEMPLATES, "", "security probe").map((t) => t.id)).toEqual(["mission_003"]);
    expect(filterTemplates(TEMPLATES, "Wealth", "probe")).toEqual([]);
  });
  it("lists sectors once, sorted", () => {
    expect(sectorsOf([...TEMPLATES, ...TEMPLATES])).toEqual(["Finance", "Security", "Wealth"]);
  });
});

describe("tracker updates", () => {
  const list = [mission("b", "2026-01-01T00:00:02Z"), mission("a", "2026-01-01T00:00:01Z")];
  const any = { status: "", template: "" };

  it("replaces a known mission in place", () => {
    const next = applyUpdate(list, { ...mission("a", "2026-01-01T00:00:01Z"), status: "SUCCEEDED" }, any);
    expect(next.map((m) => [m.id, m.status])).toEqual([
      ["b", "RUNNING"],
      ["a", "SUCCEEDED"],
    ]);
    expect(list[1].status).toBe("RUNNING"); // never mutated
  });
  it("adds a new mission newest first", () => {
    const next = applyUpdate(list, mission("c", "2026-01-01T00:00:03Z"), any);
    expect(next.map((m) => m.id)).toEqual(["c", "b", "a"]);
  });
  it("drops a mission that leaves the status filter, and ignores other templates", () => {
    const running = { status: "RUNNING", template: "" };
    expect(applyUpdate(list, { ...list[0], status: "CANCELLED" }, running).map((m) => m.id)).toEqual(["a"]);
    const other = mission("z", "2026-01-01T00:00:09Z", "RUNNING", "mission_001");
    expect(applyUpdate(list, other, { status: "", template: "mission_002" })).toBe(list);
  });
  it("leaves an older mission to the next page when there is one", () => {
    const old = mission("old", "2025-12-31T00:00:00Z");
    expect(applyUpdate(list, old, any, true)).toBe(list);
    expect(applyUpdate(list, old, any, false).map((m) => m.id)).toEqual(["b", "a", "old"]);
  });
});

describe("tracker figures", () => {
  it("budget fraction is clamped and safe on zero", () => {
    expect(budgetFraction("25.00", "100.00")).toBe(0.25);
    expect(budgetFraction("150", "100")).toBe(1);
    expect(budgetFraction("1", "0")).toBe(0);
  });
  it("time left counts down, and says when the mission ended", () => {
    const deadline = "2026-01-01T00:10:00Z";
    const now = Date.parse("2026-01-01T00:05:30Z");
    expect(timeLeft(deadline, "RUNNING", now)).toBe("4m 30s");
    expect(timeLeft(deadline, "RUNNING", Date.parse("2026-01-01T00:11:00Z"))).toBe("due now");
    expect(timeLeft(deadline, "SUCCEEDED", now)).toBe("ended");
    expect(timeLeft("2026-01-01T03:00:00Z", "QUEUED", now)).toBe("2h 54m");
  });
  it("jobs done counts every finished job", () => {
    const jobs = ["SUCCEEDED", "FAILED", "SKIPPED", "RUNNING", "WAITING"].map((status) => ({ status }));
    expect(jobsDone(jobs as { status: MissionSummary["jobs"][number]["status"] }[])).toEqual({ done: 3, total: 5 });
  });
  it("durations read well", () => {
    expect(formatDuration(42.4)).toBe("42 ms");
    expect(formatDuration(2500)).toBe("2.5 s");
    expect(formatDuration(125_000)).toBe("2m 05s");
  });
});

describe("launch form", () => {
  it("starts from the template's defaults", () => {
    expect(formDefaults(TEMPLATES[1])).toEqual({
      budget: "1000.00",
      ttl: "600",
      riskLevel: "high",
      maxDrawdown: "0.2",
      inputs: '{\n  "a": 1\n}',
    });
  });
  it("turns the form into a config input", () => {
    const { config, problems } = toConfig({
      budget: " 5000 ",
      ttl: "300",
      riskLevel: "low",
      maxDrawdown: "0.1",
      inputs: '{"b": [1]}',
    });
    expect(problems).toEqual([]);
    expect(config).toEqual({ budget: "5000", ttl: 300, risk: { level: "low", maxDrawdown: 0.1 }, inputs: { b: [1] } });
  });
  it("says what it can without asking the API", () => {
    const { problems } = toConfig({ budget: "1", ttl: "1.5", riskLevel: "", maxDrawdown: "x", inputs: "[1]" });
    expect(problems.map((p) => p.field)).toEqual(["ttl", "risk.maxDrawdown", "inputs"]);
    expect(toConfig({ budget: "", ttl: "", riskLevel: "", maxDrawdown: "", inputs: "{" }).problems[0].field).toBe(
      "inputs",
    );
  });
  it("puts each InvalidConfig problem beside its field", () => {
    const by = problemsByField([
      { field: "budget", message: "too big" },
      { field: "risk.maxDrawdown", message: "at most 1" },
      { field: "risk.level", message: "unknown" },
      { field: "inputs", message: "too large" },
      { field: "idempotencyKey", message: "too long" },
    ]);
    expect(by).toEqual({
      budget: ["too big"],
      maxDrawdown: ["at most 1"],
      riskLevel: ["unknown"],
      inputs: ["too large"],
      form: ["idempotencyKey: too long"],
    });
  });
});

describe("flow", () => {
  const graph = {
    nodes: [
      { department: "Security", roles: ["sentinel"], status: null },
      { department: "Finance", roles: ["liquidator", "trader"], status: null },
      { department: "Legal", roles: ["counsel"], status: null },
    ],
    edges: [
      { from: "Security", to: "Finance" },
      { from: "Finance", to: "Legal" },
    ],
    stages: [["Security"], ["Finance"], ["Legal"]],
  };
  it("lays departments out by stage, left to right or top down", () => {
    const lr = Object.fromEntries(layoutGraph(graph, { Finance: 2 }).map((p) => [p.department, p]));
    expect(lr.Security.x).toBeLessThan(lr.Finance.x);
    expect(lr.Finance.x).toBeLessThan(lr.Legal.x);
    expect(lr.Finance.height).toBeGreaterThan(lr.Security.height);
    const tb = Object.fromEntries(layoutGraph(graph, {}, "TB").map((p) => [p.department, p]));
    expect(tb.Security.y).toBeLessThan(tb.Finance.y);
    expect(tb.Finance.y).toBeLessThan(tb.Legal.y);
  });
  it("keeps the event log free of replayed duplicates", () => {
    let log: MissionEvent[] = [];
    for (const seq of [1, 2, 3, 2, 3, 4]) log = appendEvent(log, event(seq, "job.progress", null, 0));
    expect(log.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  });
  it("draws one bar per run, retries included", () => {
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    const bars = ganttBars([
      event(1, "mission.deployed", null, t0, "QUEUED"),
      event(2, "job.started", "m:flaky", t0 + 10, "RUNNING", { attempt: 1 }),
      event(3, "job.retrying", "m:flaky", t0 + 20, "RETRYING"),
      event(4, "job.started", "m:flaky", t0 + 30, "RUNNING", { attempt: 2 }),
      event(5, "job.succeeded", "m:flaky", t0 + 50, "SUCCEEDED", { attempt: 2 }),
      event(6, "job.started", "m:next", t0 + 60, "RUNNING", { attempt: 1 }),
    ]);
    expect(bars.map((b) => [b.role, b.attempt, b.start - t0, b.end === null ? null : b.end - t0, b.outcome])).toEqual([
      ["flaky", 1, 10, 20, "RETRYING"],
      ["flaky", 2, 30, 50, "SUCCEEDED"],
      ["next", 1, 60, null, "RUNNING"],
    ]);
  });
});

describe("statuses", () => {
  it("come from the service's definitions, approval included", () => {
    expect(MISSION_STATUSES).toContain("AWAITING_APPROVAL");
    expect(JOB_STATUSES).toContain("AWAITING_APPROVAL");
    expect(isTerminal("AWAITING_APPROVAL")).toBe(false);
    expect(isTerminal("EXPIRED")).toBe(true);
    expect(readUrl("?status=AWAITING_APPROVAL").status).toBe("AWAITING_APPROVAL");
  });
});

describe("approval gate", () => {
  const now = Date.parse("2026-01-01T00:01:00Z");

  it("says who waits, how long, and what the timeout decides", () => {
    expect(gateText(gate(), now)).toBe("Finance waits for a decision: 4m 00s left, then rejected");
    expect(gateText(gate({ onTimeout: "approve", departments: ["A", "B"] }), now)).toBe(
      "A, B wait for a decision: 4m 00s left, then approved",
    );
    expect(gateText(gate(), Date.parse("2026-01-01T00:06:00Z"))).toBe(
      "Finance waits for a decision: its timeout decides now",
    );
    expect(awaitsDecision({ approval: gate() })).toBe(true);
    expect(awaitsDecision({ approval: null })).toBe(false);
  });

  it("says before a deploy who will wait, how long, and what the timeout decides", () => {
    expect(plannedGateText({ before: ["Finance"], timeout: 300, onTimeout: "reject" })).toBe(
      "Needs approval: Finance waits for a decision once upstream succeeds (5m 00s, then rejected by the timeout)",
    );
    expect(plannedGateText({ before: ["A", "B"], timeout: 45, onTimeout: "approve" })).toBe(
      "Needs approval: A, B wait for a decision once upstream succeeds (45s, then approved by the timeout)",
    );
  });

  it("says the decision once taken: who, and what they said", () => {
    const approved = gate({ state: "APPROVED", decidedBy: "key-7", comment: "exposure checked", approved: true });
    expect(gateText(approved, now)).toBe("Approved by key-7: “exposure checked”");
    expect(gateText(gate({ state: "REJECTED", decidedBy: "key-7", comment: "too risky" }), now)).toBe(
      "Rejected by key-7: “too risky”",
    );
    expect(gateText(gate({ state: "TIMED_OUT", approved: false }), now)).toBe(
      "No decision in time: rejected by the timeout",
    );
    expect(gateNote(approved)).toBe("Approved by key-7");
    expect(gateNote(gate())).toBe("Awaits approval");
    expect(awaitsDecision({ approval: approved })).toBe(false);
  });

  it("refuses a rejection without a reason, not an approval without a comment", () => {
    expect(decisionProblem("reject", "  ")).not.toBe("");
    expect(decisionProblem("reject", "too risky")).toBe("");
    expect(decisionProblem("approve", "")).toBe("");
  });

  it("turns every answer into what the page does", () => {
    const m = mission("m1", "2026-01-01T00:00:00Z", "RUNNING");
    expect(decisionResult({ __typename: "MissionApproved", mission: m }, "m1")).toMatchObject({
      kind: "decided",
      mission: m,
    });
    expect(decisionResult({ __typename: "MissionRejected", mission: m }, "m1").kind).toBe("decided");
    const stale = decisionResult({ __typename: "NotAwaitingApproval", message: "x", state: "TIMED_OUT" }, "m1");
    expect(stale.kind).toBe("stale");
    expect(stale.message).toMatch(/someone else or the timeout decided first/);
    expect(stale.message).toContain("TIMED_OUT");
    expect(decisionResult({ __typename: "ApprovalDenied", message: "you deployed it" }, "m1")).toEqual({
      kind: "denied",
      message: "you deployed it",
    });
    const missing = decisionResult({ __typename: "MissionNotFound", message: "gone" }, "m1");
    expect(missing.kind).toBe("missing");
    expect(missing.message).toContain("No mission m1");
  });

  it("marks the gate's events in the log", () => {
    expect(isApprovalEvent("approval.granted")).toBe(true);
    expect(isApprovalEvent("job.awaiting_approval")).toBe(true);
    expect(isApprovalEvent("job.started")).toBe(false);
  });
});
