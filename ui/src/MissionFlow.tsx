import { Background, Handle, type Node, type NodeProps, Position, ReactFlow } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, gql } from "./api";
import { Gate } from "./Approval";
import { ConfirmCancel } from "./ConfirmCancel";
import { useMedia, useNow } from "./hooks";
import { subscribe } from "./live";
import {
  NODE_BASE_HEIGHT,
  NODE_WIDTH,
  ROW_HEIGHT,
  type DecisionResult,
  appendEvent,
  budgetFraction,
  formatDuration,
  ganttBars,
  ganttScale,
  gateNote,
  isApprovalEvent,
  isTerminal,
  jobsDone,
  layoutGraph,
  timeLeft,
} from "./logic";
import { CANCEL, EVENTS, MISSION } from "./queries";
import type { Job, MissionDetail, MissionEvent, MissionSummary } from "./types";

type DeptData = {
  department: string;
  status: string;
  jobs: Job[];
  gate: string; // the approval gate's note, on the departments it holds
  gateState: string;
  selected: string;
  onSelect: (id: string) => void;
  vertical: boolean;
};
type DeptNode = Node<DeptData, "department">;

function DepartmentNode({ data }: NodeProps<DeptNode>) {
  return (
    <div
      className={`dept status-${data.status.toLowerCase()}`}
      role="group"
      aria-label={`${data.department} department`}
      style={{ width: NODE_WIDTH }}
    >
      <Handle type="target" position={data.vertical ? Position.Top : Position.Left} isConnectable={false} />
      <div className="dept-head">
        <strong>{data.department}</strong>
        <span className="dept-status">{data.status}</span>
      </div>
      {data.gate && <p className={`dept-gate gate-${data.gateState.toLowerCase()}`}>{data.gate}</p>}
      <ul>
        {data.jobs.map((job) => (
          <li key={job.id}>
            <button
              type="button"
              className={`agent nodrag nopan${data.selected === job.id ? " selected" : ""}`}
              onClick={() => data.onSelect(job.id)}
              aria-pressed={data.selected === job.id}
            >
              <span className={`dot ${job.status.toLowerCase()}`} aria-hidden="true" />
              <span className="role">{job.role}</span>
              <span className="meta">
                {job.status} · try {job.attempts} · {Math.round(job.progress * 100)}%
              </span>
            </button>
          </li>
        ))}
      </ul>
      <Handle type="source" position={data.vertical ? Position.Bottom : Position.Right} isConnectable={false} />
    </div>
  );
}

const nodeTypes = { department: DepartmentNode };

/** Visual Mission Flow: the department graph, live, with agent details, the event log and a Gantt. */
export function MissionFlow({
  missionId,
  canOperate,
  onBack,
}: {
  missionId: string;
  canOperate: boolean;
  onBack: () => void;
}) {
  const [mission, setMission] = useState<MissionDetail | null>(null);
  const [state, setState] = useState<"loading" | "ready" | "missing" | "error">("loading");
  const [error, setError] = useState("");
  const [events, setEvents] = useState<MissionEvent[]>([]);
  const [eventsEnded, setEventsEnded] = useState(false);
  const [selected, setSelected] = useState("");
  const [confirming, setConfirming] = useState(false);
  const [notice, setNotice] = useState("");
  const now = useNow();
  const narrow = useMedia("(max-width: 600px)");
  const refreshing = useRef<{ timer: ReturnType<typeof setTimeout> | null; again: boolean }>({
    timer: null,
    again: false,
  });

  const load = useCallback(async () => {
    try {
      const data = await gql<{ mission: MissionDetail | null }>(MISSION, { id: missionId });
      if (data.mission) {
        setMission(data.mission);
        setState("ready");
      } else setState("missing");
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
      setState("error");
    }
  }, [missionId]);

  // Re-read the mission after events, at most a few times a second.
  const refresh = useCallback(() => {
    const r = refreshing.current;
    if (r.timer) {
      r.again = true;
      return;
    }
    r.timer = setTimeout(async () => {
      await load();
      r.timer = null;
      if (r.again) {
        r.again = false;
        refresh();
      }
    }, 150);
  }, [load]);

  useEffect(() => {
    void load();
    const sub = subscribe<{ missionEvents: MissionEvent }>({
      query: EVENTS,
      variables: { missionId, afterSeq: 0 },
      next: ({ missionEvents: event }) => {
        // a reconnect re-sends this subscription with the latest afterSeq: only missed events come
        sub.payload.variables.afterSeq = event.seq;
        setEvents((list) => appendEvent(list, event));
        refresh();
      },
      error: (message) => setError(message),
      complete: () => {
        setEventsEnded(true);
        refresh();
      },
    });
    return () => {
      sub.stop();
      const timer = refreshing.current.timer;
      if (timer) clearTimeout(timer);
    };
  }, [missionId, load, refresh]);

  const nodes = useMemo<DeptNode[]>(() => {
    if (!mission) return [];
    const jobsOf: Record<string, Job[]> = {};
    for (const job of mission.jobs) (jobsOf[job.department] ??= []).push(job);
    const gated = new Set(mission.approval?.departments ?? []);
    const gate = mission.approval ? gateNote(mission.approval) : "";
    // a gated department's node has one more row: the gate's note
    const counts = Object.fromEntries(
      mission.graph.nodes.map((n) => [n.department, (jobsOf[n.department]?.length ?? n.roles.length) + (gated.has(n.department) ? 1 : 0)]),
    );
    return layoutGraph(mission.graph, counts, narrow ? "TB" : "LR").map((p) => {
      const node = mission.graph.nodes.find((n) => n.department === p.department);
      return {
        id: p.department,
        type: "department",
        position: { x: p.x, y: p.y },
        draggable: false,
        selectable: false,
        focusable: false, // the agents inside are the buttons to reach
        style: { pointerEvents: "all" as const }, // not draggable or selectable, yet its agents are clickable
        data: {
          department: p.department,
          status: node?.status ?? "WAITING",
          jobs: jobsOf[p.department] ?? [],
          gate: gated.has(p.department) ? gate : "",
          gateState: mission.approval?.state ?? "",
          selected,
          onSelect: setSelected,
          vertical: narrow,
        },
      };
    });
  }, [mission, selected, narrow]);

  // As tall as the laid-out graph (within bounds), so a small graph leaves no empty box.
  const flowHeight = useMemo(() => {
    const height = (n: DeptNode) => (n.data.jobs.length + (n.data.gate ? 1 : 0)) * ROW_HEIGHT + NODE_BASE_HEIGHT;
    const bottom = Math.max(0, ...nodes.map((n) => n.position.y + height(n)));
    return Math.min(narrow ? 640 : 520, Math.max(300, bottom + 70));
  }, [nodes, narrow]);

  const edges = useMemo(
    () =>
      (mission?.graph.edges ?? []).map((e) => ({
        id: `${e.from}->${e.to}`,
        source: e.from,
        target: e.to,
        animated: mission ? !isTerminal(mission.status) : false,
      })),
    [mission],
  );

  const doCancel = async () => {
    setConfirming(false);
    try {
      await gql(CANCEL, { id: missionId });
      await load();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };

  const onDecided = (result: DecisionResult<MissionSummary>) => {
    setError("");
    setNotice(result.kind === "decided" || result.kind === "stale" ? result.message : "");
    if (result.kind !== "decided" && result.kind !== "stale") setError(result.message);
    void load();
  };

  const back = (
    <a
      href="./"
      className="back"
      onClick={(e) => {
        e.preventDefault();
        onBack();
      }}
    >
      ← All missions
    </a>
  );

  if (state === "loading") return <section className="flow-view">{back}<p role="status">Loading mission…</p></section>;
  if (state === "missing")
    return (
      <section className="flow-view">
        {back}
        <p className="error" role="alert">
          No mission {missionId} (or it belongs to another tenant).
        </p>
      </section>
    );
  if (state === "error" || !mission)
    return (
      <section className="flow-view">
        {back}
        <p className="error" role="alert">
          {error}
        </p>
      </section>
    );

  const job = mission.jobs.find((j) => j.id === selected) ?? null;
  const { done, total } = jobsDone(mission.jobs);
  const name = mission.template?.name ?? mission.templateId;
  return (
    <section className="flow-view" aria-labelledby="mission-title">
      {back}
      <div className="mission-head">
        <h2 id="mission-title">
          {name} <code>{mission.id}</code>
        </h2>
        <span className={`badge ${mission.status.toLowerCase()}`} role="status" aria-label="Mission status">
          {mission.status}
        </span>
        <span className="budget">
          <span className="bar" role="meter" aria-label="Budget spent" aria-valuenow={Number(mission.budget.spent)} aria-valuemin={0} aria-valuemax={Number(mission.budget.allocated)}>
            <span style={{ width: `${(budgetFraction(mission.budget.spent, mission.budget.allocated) * 100).toFixed(1)}%` }} />
          </span>
          <small>
            {mission.budget.spent} / {mission.budget.allocated}
          </small>
        </span>
        <span title="Time left before the deadline">
          {isTerminal(mission.status) ? "ended" : `${timeLeft(mission.deadline, mission.status, now)} left`}
        </span>
        <span>
          {done}/{total} jobs
        </span>
        {canOperate && !isTerminal(mission.status) && (
          <button type="button" className="danger" onClick={() => setConfirming(true)}>
            Cancel
          </button>
        )}
      </div>
      {mission.approval && (
        <section className="gate-panel" aria-label="Approval gate">
          <Gate missionId={mission.id} approval={mission.approval} canDecide={mission.canDecide} onResult={onDecided} />
        </section>
      )}
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {mission.failureReason && <p className="error">{mission.failureReason}</p>}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="flow-main">
        <div className="flow" aria-label="Department flow" style={{ height: flowHeight }}>
          <ReactFlow
            key={narrow ? "TB" : "LR"}
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            fitView
            fitViewOptions={{ padding: 0.15, maxZoom: 1 }}
            nodesConnectable={false}
            nodesDraggable={false}
            elementsSelectable={false}
            proOptions={{ hideAttribution: true }}
            minZoom={0.3}
          >
            <Background gap={16} />
          </ReactFlow>
        </div>
        <aside className="agent-detail" aria-label="Agent details" style={{ maxHeight: narrow ? undefined : flowHeight }}>
          {job ? <AgentDetail job={job} /> : <p className="note">Click an agent to see its output, error, spend and tries.</p>}
        </aside>
      </div>
      <div className="flow-lower">
        <section aria-labelledby="log-title" className="log">
          <h3 id="log-title">Event log</h3>
          {events.length === 0 && (
            <p className="note">
              {eventsEnded ? "This mission's event log has expired (it is kept for a retention period)." : "Waiting for events…"}
            </p>
          )}
          <ol role="log" aria-live="polite" aria-labelledby="log-title">
            {events.map((e) => (
              <li key={e.seq} className={isApprovalEvent(e.type) ? "approval" : undefined}>
                <span className="seq">{e.seq}</span>
                <time dateTime={e.at}>{new Date(e.at).toLocaleTimeString()}</time>
                <span className="type">{e.type}</span>
                <span className="job">{e.jobId ? e.jobId.slice(e.jobId.lastIndexOf(":") + 1) : ""}</span>
                <span className="msg">{e.message}</span>
              </li>
            ))}
          </ol>
        </section>
        <Gantt events={events} now={now} />
      </div>
      {confirming && (
        <ConfirmCancel onYes={doCancel} onNo={() => setConfirming(false)}>
          Its running agents stop and nothing more runs.
        </ConfirmCancel>
      )}
    </section>
  );
}

function AgentDetail({ job }: { job: Job }) {
  return (
    <>
      <h3>{job.role}</h3>
      <dl className="facts">
        <dt>Department</dt>
        <dd>{job.department}</dd>
        <dt>Agent</dt>
        <dd>
          <code>{job.agent}</code>
        </dd>
        <dt>Status</dt>
        <dd>{job.status}</dd>
        <dt>Attempts</dt>
        <dd>{job.attempts}</dd>
        <dt>Spent</dt>
        <dd>
          {job.budget.spent} of {job.budget.allocated}
        </dd>
        {job.message && (
          <>
            <dt>Last message</dt>
            <dd>{job.message}</dd>
          </>
        )}
      </dl>
      {job.error && (
        <>
          <h4>Error</h4>
          <pre className="error">{job.error}</pre>
        </>
      )}
      <h4>Output</h4>
      {job.output == null ? <p className="note">No output yet.</p> : <pre>{JSON.stringify(job.output, null, 2)}</pre>}
    </>
  );
}

function Gantt({ events, now }: { events: MissionEvent[]; now: number }) {
  const bars = ganttBars(events);
  const { from, to } = ganttScale(bars, now);
  const span = to - from;
  return (
    <section aria-labelledby="gantt-title" className="gantt">
      <h3 id="gantt-title">Timeline</h3>
      {bars.length === 0 ? (
        <p className="note">No job has started yet.</p>
      ) : (
        <>
          <ul aria-label="Job runs">
            {bars.map((b) => {
              const end = b.end ?? now;
              const took = formatDuration(end - b.start);
              return (
                <li key={`${b.jobId}#${b.attempt}`}>
                  <span className="label">
                    {b.role} <small>try {b.attempt}</small>
                  </span>
                  <span className="track">
                    <span
                      className={`run ${b.outcome.toLowerCase()}`}
                      style={{ left: `${((b.start - from) / span) * 100}%`, width: `${Math.max(0.5, ((end - b.start) / span) * 100)}%` }}
                      title={`${b.role}, try ${b.attempt}: ${b.outcome} after ${took}`}
                    />
                  </span>
                  <span className="outcome">{b.outcome}</span>
                </li>
              );
            })}
          </ul>
          <p className="axis">
            <span>0</span>
            <span>{formatDuration(span)}</span>
          </p>
        </>
      )}
    </section>
  );
}
