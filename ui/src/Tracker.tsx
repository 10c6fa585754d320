import { memo, useCallback, useEffect, useRef, useState } from "react";
import { ApiError, gql } from "./api";
import { Gate } from "./Approval";
import { ConfirmCancel } from "./ConfirmCancel";
import { useClock } from "./hooks";
import { lastMessageArrival, onLinkState, subscribe } from "./live";
import { type DecisionResult, applyUpdate, budgetFraction, isTerminal, jobsDone, timeLeft } from "./logic";
import { CANCEL, MISSIONS, UPDATES } from "./queries";
import { MISSION_STATUSES } from "./statuses";
import type { MissionSummary, Template } from "./types";

interface Page {
  totalCount: number;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  nodes: MissionSummary[];
}

/** Active Mission Tracker: missions newest first, live from `missionUpdates`. */
export function Tracker({
  status,
  template,
  templates,
  onFilter,
  canOperate,
  onOpen,
  blocked,
}: {
  status: string;
  template: string;
  templates: Template[];
  onFilter: (patch: { status?: string; template?: string }) => void;
  canOperate: boolean;
  onOpen: (id: string) => void;
  blocked: boolean;
}) {
  const [missions, setMissions] = useState<MissionSummary[]>([]);
  const [page, setPage] = useState<{ hasNextPage: boolean; endCursor: string | null; total: number }>({
    hasNextPage: false,
    endCursor: null,
    total: 0,
  });
  const [state, setState] = useState<"loading" | "ready" | "error">("loading");
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const [confirming, setConfirming] = useState<MissionSummary | null>(null);
  const filter = useRef({ status, template });
  filter.current = { status, template };
  const more = useRef(false);
  more.current = page.hasNextPage;
  const received = useRef<number | null>(null); // when the oldest update not yet on screen reached the page

  const load = useCallback(async () => {
    try {
      const data = await gql<{ missions: Page }>(MISSIONS, {
        status: status || null,
        templateId: template || null,
      });
      setMissions(data.missions.nodes);
      setPage({ ...data.missions.pageInfo, total: data.missions.totalCount });
      setState("ready");
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
      setState("error");
    }
  }, [status, template]);

  useEffect(() => {
    if (blocked) return;
    setState("loading");
    void load();
  }, [load, blocked]);

  // Live: each update replaces its row; after a reconnect the first page is read again.
  useEffect(() => {
    if (blocked) return;
    const sub = subscribe<{ missionUpdates: MissionSummary }>({
      query: UPDATES,
      next: ({ missionUpdates: m }) => {
        received.current ??= lastMessageArrival() || performance.now();
        setMissions((list) => applyUpdate(list, m, filter.current, more.current));
      },
      error: (message) => setError(message),
    });
    const off = onLinkState((_, resumed) => {
      if (resumed) void load();
    });
    return () => {
      off();
      sub.stop();
    };
  }, [load, blocked]);

  // How long updates take to reach the screen (read by `make bench` through the User Timing API).
  useEffect(() => {
    if (received.current === null) return;
    performance.measure("tracker-update", { start: received.current, end: performance.now() });
    received.current = null;
  }, [missions]);

  const loadMore = async () => {
    if (!page.endCursor) return;
    try {
      const data = await gql<{ missions: Page }>(MISSIONS, {
        status: status || null,
        templateId: template || null,
        after: page.endCursor,
      });
      setMissions((list) => [...list, ...data.missions.nodes.filter((m) => !list.some((x) => x.id === m.id))]);
      setPage({ ...data.missions.pageInfo, total: data.missions.totalCount });
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };

  const cancel = async (mission: MissionSummary) => {
    setConfirming(null);
    try {
      const data = await gql<{ cancelMission: { __typename: string; mission?: MissionSummary; message?: string } }>(
        CANCEL,
        { id: mission.id },
      );
      const answer = data.cancelMission;
      if (answer.mission) {
        const m = answer.mission;
        setMissions((list) => applyUpdate(list, m, filter.current, more.current));
      } else setError(answer.message ?? "the mission could not be cancelled");
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };

  // A decision's answer: the mission as it is now, or why not (and a fresh list when it was stale).
  const onDecided = useCallback(
    (result: DecisionResult<MissionSummary>) => {
      setError("");
      setNotice("");
      if (result.kind === "decided") {
        const m = result.mission;
        setMissions((list) => applyUpdate(list, m, filter.current, more.current));
        setNotice(result.message);
      } else if (result.kind === "stale") {
        setNotice(result.message);
        void load();
      } else {
        setError(result.message);
        if (result.kind === "missing") void load();
      }
    },
    [load],
  );

  return (
    <section className="tracker" aria-labelledby="tracker-title">
      <div className="section-head">
        <h2 id="tracker-title">Missions</h2>
        <div className="filters">
          <div className="filter">
            <label htmlFor="filter-status">Status</label>
            <select id="filter-status" value={status} onChange={(e) => onFilter({ status: e.target.value })}>
              <option value="">Any status</option>
              {MISSION_STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </div>
          <div className="filter">
            <label htmlFor="filter-template">Template</label>
            <select id="filter-template" value={template} onChange={(e) => onFilter({ template: e.target.value })}>
              <option value="">Any template</option>
              {templates.map((t) => (
                <option key={t.id} value={t.id}>
                  {t.name}
                </option>
              ))}
              {template && !templates.some((t) => t.id === template) && <option value={template}>{template}</option>}
            </select>
          </div>
        </div>
      </div>
      {state === "loading" && !blocked && <p role="status">Loading missions…</p>}
      {blocked && <p className="empty">Paste an API key above to see missions.</p>}
      {error && !blocked && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {notice && !blocked && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {!blocked && state === "ready" && missions.length === 0 && (
        <p className="empty">
          {status || template ? "No mission matches these filters." : "No mission yet: launch one from the library."}
        </p>
      )}
      {!blocked && missions.length > 0 && (
        <>
          <p className="count">
            {missions.length} of {Math.max(page.total, missions.length)} shown
          </p>
          <ul className="missions" aria-label="Missions">
            {missions.map((m) => (
              <MissionRow
                key={m.id}
                mission={m}
                canOperate={canOperate}
                onOpen={onOpen}
                onCancel={setConfirming}
                onDecided={onDecided}
              />
            ))}
          </ul>
        </>
      )}
      {page.hasNextPage && (
        <button type="button" onClick={loadMore}>
          Load more
        </button>
      )}
      {confirming && (
        <ConfirmCancel onYes={() => cancel(confirming)} onNo={() => setConfirming(null)}>
          {confirming.template?.name ?? confirming.templateId} <code>{confirming.id}</code>: its running agents stop
          and nothing more runs.
        </ConfirmCancel>
      )}
    </section>
  );
}

const MissionRow = memo(function MissionRow({
  mission: m,
  canOperate,
  onOpen,
  onCancel,
  onDecided,
}: {
  mission: MissionSummary;
  canOperate: boolean;
  onOpen: (id: string) => void;
  onCancel: (m: MissionSummary) => void;
  onDecided: (result: DecisionResult<MissionSummary>) => void;
}) {
  const { done, total } = jobsDone(m.jobs);
  const fraction = budgetFraction(m.budget.spent, m.budget.allocated);
  const name = m.template?.name ?? m.templateId;
  const gate = m.approval && m.approval.state !== "NOT_REACHED" ? m.approval : null;
  return (
    <li
      className={`mission status-${m.status.toLowerCase()}${gate ? " gated" : ""}`}
      aria-label={`${name} ${m.id}`}
      data-mission-id={m.id}
    >
      <a
        className="name"
        href={`?mission=${encodeURIComponent(m.id)}`}
        onClick={(e) => {
          e.preventDefault();
          onOpen(m.id);
        }}
      >
        {name} <code>{m.id.slice(0, 13)}</code>
      </a>
      <span className={`badge ${m.status.toLowerCase()}`}>{m.status}</span>
      <span className="budget">
        <span
          className="bar"
          role="meter"
          aria-label="Budget spent"
          aria-valuemin={0}
          aria-valuemax={Number(m.budget.allocated)}
          aria-valuenow={Number(m.budget.spent)}
          aria-valuetext={`${m.budget.spent} of ${m.budget.allocated}`}
        >
          <span style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
        </span>
        <small>
          {m.budget.spent} / {m.budget.allocated}
        </small>
      </span>
      <span className="left" title="Time left before the deadline">
        {isTerminal(m.status) ? "ended" : <Countdown deadline={m.deadline} status={m.status} />}
      </span>
      <span className="jobs" title="Jobs done / total">
        {done}/{total} jobs
      </span>
      <span className="actions">
        {canOperate && !isTerminal(m.status) && (
          <button type="button" className="danger" onClick={() => onCancel(m)}>
            Cancel
          </button>
        )}
      </span>
      {gate && <Gate missionId={m.id} approval={gate} canDecide={m.canDecide} onResult={onDecided} />}
    </li>
  );
});

/** Time left, re-rendered alone each second. */
function Countdown({ deadline, status }: { deadline: string; status: string }) {
  return <>{timeLeft(deadline, status, useClock())}</>;
}
