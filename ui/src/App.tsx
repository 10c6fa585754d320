import { type FormEvent, useCallback, useEffect, useState } from "react";
import { ApiError, apiKey, gql, storeApiKey } from "./api";
import { useLinkState, useUrlState } from "./hooks";
import { Library } from "./Library";
import { resetLiveClient } from "./live";
import { MissionFlow } from "./MissionFlow";
import { TEMPLATES, VIEWER } from "./queries";
import { Tracker } from "./Tracker";
import type { Load, Template, Viewer } from "./types";

function message(err: unknown): { message: string; refused: boolean } {
  if (err instanceof ApiError) return { message: err.message, refused: err.refused };
  return { message: String(err), refused: false };
}

export function App() {
  const [url, setUrl] = useUrlState();
  const [key, setKey] = useState(apiKey());
  const [viewer, setViewer] = useState<Load<Viewer>>({ state: "loading" });
  const [templates, setTemplates] = useState<Load<Template[]>>({ state: "loading" });
  const link = useLinkState();

  useEffect(() => {
    let live = true;
    setViewer({ state: "loading" });
    setTemplates({ state: "loading" });
    gql<{ viewer: Viewer }>(VIEWER).then(
      (data) => live && setViewer({ state: "ready", value: data.viewer }),
      (err) => live && setViewer({ state: "error", ...message(err) }),
    );
    gql<{ templates: Template[] }>(TEMPLATES).then(
      (data) => live && setTemplates({ state: "ready", value: data.templates }),
      (err) => live && setTemplates({ state: "error", ...message(err) }),
    );
    return () => {
      live = false;
    };
  }, [key]);

  const applyKey = useCallback((next: string) => {
    storeApiKey(next);
    resetLiveClient();
    setKey(next);
  }, []);

  const canOperate = viewer.state === "ready" && viewer.value.canOperate;
  const refused = viewer.state === "error" && viewer.refused;
  const openMission = (id: string) => setUrl({ mission: id }, true);

  return (
    <>
      <header className="top">
        <h1>Mission Control</h1>
        <AccessForm current={key} onUse={applyKey} viewer={viewer.state === "ready" ? viewer.value : null} />
        {link === "reconnecting" && !refused && (
          <p className="link reconnecting" role="status">
            Live updates: reconnecting…
          </p>
        )}
      </header>
      {viewer.state === "error" && (
        <p className="banner error" role="alert">
          {viewer.message}
        </p>
      )}
      <main>
        {url.mission ? (
          <MissionFlow
            key={`${url.mission}:${key}`}
            missionId={url.mission}
            canOperate={canOperate}
            onBack={() => setUrl({ mission: "" }, true)}
          />
        ) : (
          <div className="home">
            <Library
              templates={templates}
              sector={url.sector}
              search={url.q}
              onFilter={(patch) => setUrl(patch)}
              canOperate={canOperate}
              onDeployed={openMission}
            />
            <Tracker
              key={key}
              status={url.status}
              template={url.template}
              templates={templates.state === "ready" ? templates.value : []}
              onFilter={(patch) => setUrl(patch)}
              canOperate={canOperate}
              onOpen={openMission}
              blocked={refused}
            />
          </div>
        )}
      </main>
    </>
  );
}

function AccessForm({
  current,
  onUse,
  viewer,
}: {
  current: string;
  onUse: (key: string) => void;
  viewer: Viewer | null;
}) {
  const [draft, setDraft] = useState(current);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onUse(draft.trim());
  };
  return (
    <form className="access" onSubmit={submit}>
      <label htmlFor="api-key">API key</label>
      <input
          id="api-key"
          type="password"
          autoComplete="off"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          placeholder="none"
        />
      <button type="submit">Use key</button>
      {viewer && (
        <span className="who" role="status">
          {viewer.role} · {viewer.tenant}
        </span>
      )}
    </form>
  );
}
