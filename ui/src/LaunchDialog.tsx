import { cloneElement, type FormEvent, type ReactElement, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, gql } from "./api";
import {
  type FormField,
  type LaunchForm,
  formDefaults,
  formatSeconds,
  newIdempotencyKey,
  plannedGateText,
  problemsByField,
  toConfig,
} from "./logic";
import { DEPLOY, PLAN } from "./queries";
import type { FieldProblem, PlannedAgent, PlannedGate, Template } from "./types";

type PlanAnswer =
  | { __typename: "MissionPlan"; budget: string; ttl: number; agents: PlannedAgent[]; approval: PlannedGate | null }
  | { __typename: "InvalidConfig"; message: string; problems: FieldProblem[] }
  | { __typename: "TemplateNotFound"; message: string };

type DeployAnswer =
  | { __typename: "MissionDeployed"; mission: { id: string } }
  | { __typename: "InvalidConfig"; message: string; problems: FieldProblem[] }
  | { __typename: "TemplateNotFound" | "RateLimited"; message: string };

const RISK_LEVELS = ["low", "medium", "high", "critical"];

/** Launch Configuration Modal: overrides, the squad the plan will make, and Deploy. */
export function LaunchDialog({
  template,
  onClose,
  onDeployed,
}: {
  template: Template;
  onClose: () => void;
  onDeployed: (missionId: string) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const idempotencyKey = useMemo(() => newIdempotencyKey(), []); // one per opened dialog
  const sending = useRef(false);
  const [form, setForm] = useState<LaunchForm>(() => formDefaults(template));
  const [problems, setProblems] = useState<FieldProblem[]>([]);
  const [plan, setPlan] = useState<PlannedAgent[] | null>(null);
  const [gate, setGate] = useState<PlannedGate | null>(null);
  const [planNote, setPlanNote] = useState("Planning…");
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState("");

  useEffect(() => {
    const el = dialog.current;
    if (el && !el.open) el.showModal();
  }, []);

  // The squad preview follows the form (debounced), from the API's dry-run plan.
  useEffect(() => {
    const { config, problems: local } = toConfig(form);
    if (local.length) {
      setProblems(local);
      setPlanNote("Fix the fields above to see the squad.");
      return;
    }
    let live = true;
    const timer = setTimeout(() => {
      gql<{ planMission: PlanAnswer }>(PLAN, { templateId: template.id, config }).then(
        ({ planMission: answer }) => {
          if (!live) return;
          if (answer.__typename === "MissionPlan") {
            setPlan(answer.agents);
            setGate(answer.approval);
            setProblems([]);
            setPlanNote("");
          } else if (answer.__typename === "InvalidConfig") {
            setProblems(answer.problems);
            setPlanNote("Fix the fields above to see the squad.");
          } else {
            setPlanNote(answer.message);
          }
        },
        (err) => live && setPlanNote(err instanceof ApiError ? err.message : String(err)),
      );
    }, 250);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [form, template.id]);

  const byField = problemsByField(problems);
  const set = (field: keyof LaunchForm) => (value: string) => setForm((f) => ({ ...f, [field]: value }));

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (sending.current) return; // a double click deploys once (and the key makes sure of it)
    const { config, problems: local } = toConfig(form);
    if (local.length) {
      setProblems(local);
      return;
    }
    sending.current = true;
    setBusy(true);
    setFailure("");
    try {
      const { deployMission: answer } = await gql<{ deployMission: DeployAnswer }>(DEPLOY, {
        templateId: template.id,
        config,
        key: idempotencyKey,
      });
      if (answer.__typename === "MissionDeployed") {
        dialog.current?.close();
        onDeployed(answer.mission.id);
        return;
      }
      if (answer.__typename === "InvalidConfig") setProblems(answer.problems);
      else setFailure(answer.message);
    } catch (err) {
      setFailure(err instanceof ApiError ? err.message : String(err));
    } finally {
      sending.current = false;
      setBusy(false);
    }
  };

  const titleId = `launch-${template.id}`;
  const limits = template.limits;
  return (
    <dialog ref={dialog} className="launch" aria-labelledby={titleId} onClose={onClose}>
      <form onSubmit={submit} noValidate>
        <header>
          <h2 id={titleId}>{template.name}</h2>
          <p className="goal">{template.goal}</p>
        </header>
        <div className="fields">
          <Field
            name="budget"
            label="Budget"
            hint={`${limits.budget.min} – ${limits.budget.max}`}
            problems={byField.budget}
          >
            <input inputMode="decimal" value={form.budget} onChange={(e) => set("budget")(e.target.value)} />
          </Field>
          <Field
            name="ttl"
            label="TTL"
            hint={`seconds, ${limits.ttl.min} – ${limits.ttl.max} (${formatSeconds(limits.ttl.min)} – ${formatSeconds(limits.ttl.max)})`}
            problems={byField.ttl}
          >
            <input inputMode="numeric" value={form.ttl} onChange={(e) => set("ttl")(e.target.value)} />
          </Field>
          <Field name="riskLevel" label="Risk level" problems={byField.riskLevel}>
            <select value={form.riskLevel} onChange={(e) => set("riskLevel")(e.target.value)}>
              {RISK_LEVELS.map((level) => (
                <option key={level} value={level}>
                  {level}
                </option>
              ))}
            </select>
          </Field>
          <Field name="maxDrawdown" label="Max drawdown" hint="0 – 1" problems={byField.maxDrawdown}>
            <input inputMode="decimal" value={form.maxDrawdown} onChange={(e) => set("maxDrawdown")(e.target.value)} />
          </Field>
          <Field name="inputs" label="Inputs" hint="JSON, merged over the template's" problems={byField.inputs} wide>
            <textarea
              rows={6}
              spellCheck={false}
              value={form.inputs}
              onChange={(e) => set("inputs")(e.target.value)}
            />
          </Field>
        </div>
        <section className="squad" aria-labelledby={`${titleId}-squad`}>
          <h3 id={`${titleId}-squad`}>Squad preview</h3>
          {planNote ? (
            <p className="note" role="status">
              {planNote}
            </p>
          ) : (
            plan && (
              <>
                {gate && (
                  <p className="planned-gate" role="status">
                    {plannedGateText(gate)}
                  </p>
                )}
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Agent</th>
                      <th scope="col">Department</th>
                      <th scope="col">Stage</th>
                      <th scope="col" className="num">
                        Budget
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {plan.map((a) => (
                      <tr key={a.role}>
                        <td>
                          {a.role} <small>{a.agent}</small>
                        </td>
                        <td>{a.department}</td>
                        <td>{a.stage + 1}</td>
                        <td className="num">{a.allocated}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </>
            )
          )}
        </section>
        {(byField.form || failure) && (
          <div className="error" role="alert">
            {failure && <p>{failure}</p>}
            {byField.form?.map((m) => (
              <p key={m}>{m}</p>
            ))}
          </div>
        )}
        <footer>
          <button type="button" onClick={() => dialog.current?.close()}>
            Close
          </button>
          <button type="submit" className="primary" disabled={busy} aria-disabled={busy}>
            {busy ? "Deploying…" : "Deploy"}
          </button>
        </footer>
      </form>
    </dialog>
  );
}

function Field({
  name,
  label,
  hint,
  problems,
  wide,
  children,
}: {
  name: FormField;
  label: string;
  hint?: string;
  problems?: string[];
  wide?: boolean;
  children: ReactElement<Record<string, unknown>>;
}) {
  const id = `field-${name}`;
  const problemId = `${id}-problem`;
  const hintId = `${id}-hint`;
  const described = [hint ? hintId : "", problems?.length ? problemId : ""].filter(Boolean).join(" ");
  const control = cloneElement(children, {
    id,
    "aria-describedby": described || undefined,
    "aria-invalid": problems?.length ? true : undefined,
  });
  return (
    <div className={`field${wide ? " wide" : ""}${problems?.length ? " invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {control}
      {hint && (
        <small id={hintId} className="hint">
          {hint}
        </small>
      )}
      {problems?.length ? (
        <p id={problemId} className="problem" role="alert">
          {problems.join("; ")}
        </p>
      ) : null}
    </div>
  );
}
