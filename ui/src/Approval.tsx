// The approval gate of a mission, as the tracker and the flow view show it: who waits and how long,
// "Approve" and "Reject" for those who may decide, and the decision once taken.
import { type FormEvent, useEffect, useId, useRef, useState } from "react";
import { ApiError, gql } from "./api";
import { useClock } from "./hooks";
import { type Decision, type DecisionAnswer, type DecisionResult, decisionProblem, decisionResult, gateText } from "./logic";
import { APPROVE, REJECT } from "./queries";
import type { MissionApproval, MissionSummary } from "./types";

/** Sends the decision; every answer (and a failed request) comes back as a DecisionResult. */
export async function decide(
  missionId: string,
  decision: Decision,
  text: string,
): Promise<DecisionResult<MissionSummary>> {
  try {
    if (decision === "approve") {
      const data = await gql<{ approveMission: DecisionAnswer<MissionSummary> }>(APPROVE, {
        id: missionId,
        comment: text.trim() || null,
      });
      return decisionResult(data.approveMission, missionId);
    }
    const data = await gql<{ rejectMission: DecisionAnswer<MissionSummary> }>(REJECT, {
      id: missionId,
      reason: text.trim(),
    });
    return decisionResult(data.rejectMission, missionId);
  } catch (err) {
    return { kind: "denied", message: err instanceof ApiError ? err.message : String(err) };
  }
}

/** The gate's line (re-rendered alone each second while it counts down) and, for those who may
 * decide, its two buttons. */
export function Gate({
  missionId,
  approval,
  canDecide,
  onResult,
}: {
  missionId: string;
  approval: MissionApproval;
  canDecide: boolean;
  onResult: (result: DecisionResult<MissionSummary>) => void;
}) {
  const [asking, setAsking] = useState<Decision | null>(null);
  const pending = approval.state === "PENDING";
  return (
    <div className={`gate gate-${approval.state.toLowerCase()}`}>
      <span className="gate-text">
        <span className="gate-label">Approval</span> {pending ? <GateCountdown approval={approval} /> : gateText(approval, 0)}
      </span>
      {pending && canDecide && (
        <span className="gate-actions">
          <button type="button" className="approve" onClick={() => setAsking("approve")}>
            Approve
          </button>
          <button type="button" className="danger" onClick={() => setAsking("reject")}>
            Reject
          </button>
        </span>
      )}
      {asking && (
        <DecideDialog
          missionId={missionId}
          decision={asking}
          departments={approval.departments}
          onClose={() => setAsking(null)}
          onResult={(result) => {
            setAsking(null);
            onResult(result);
          }}
        />
      )}
    </div>
  );
}

function GateCountdown({ approval }: { approval: MissionApproval }) {
  return <>{gateText(approval, useClock())}</>;
}

/** Asks for the comment (optional) or the reason (required), then sends the decision once. */
function DecideDialog({
  missionId,
  decision,
  departments,
  onClose,
  onResult,
}: {
  missionId: string;
  decision: Decision;
  departments: string[];
  onClose: () => void;
  onResult: (result: DecisionResult<MissionSummary>) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [text, setText] = useState("");
  const [problem, setProblem] = useState("");
  const [sending, setSending] = useState(false);
  const ids = useId();
  useEffect(() => {
    if (dialog.current && !dialog.current.open) dialog.current.showModal();
  }, []);
  const approve = decision === "approve";
  const who = departments.join(", ");
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const why = decisionProblem(decision, text);
    setProblem(why);
    if (why || sending) return;
    setSending(true);
    onResult(await decide(missionId, decision, text));
  };
  return (
    <dialog ref={dialog} className="decide" aria-labelledby={`${ids}-title`} onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <h2 id={`${ids}-title`}>{approve ? "Approve this mission?" : "Reject this mission?"}</h2>
        <p>
          <code>{missionId}</code>:{" "}
          {approve ? `${who} will run.` : `${who} and what depends on it will be skipped.`}
        </p>
        <div className={`field${problem ? " invalid" : ""}`}>
          <label htmlFor={`${ids}-text`}>{approve ? "Comment" : "Reason"}</label>
          <textarea
            id={`${ids}-text`}
            rows={3}
            value={text}
            required={!approve}
            aria-invalid={problem ? true : undefined}
            aria-describedby={problem ? `${ids}-problem` : `${ids}-hint`}
            onChange={(e) => setText(e.target.value)}
          />
          {problem ? (
            <p className="problem" id={`${ids}-problem`}>
              {problem}
            </p>
          ) : (
            <span className="hint" id={`${ids}-hint`}>
              {approve ? "Optional; kept with the decision." : "Required; kept with the decision and shown to all."}
            </span>
          )}
        </div>
        <footer>
          <button type="button" onClick={onClose}>
            Back
          </button>
          <button type="submit" className={approve ? "primary" : "danger"} disabled={sending}>
            {approve ? "Approve mission" : "Reject mission"}
          </button>
        </footer>
      </form>
    </dialog>
  );
}
