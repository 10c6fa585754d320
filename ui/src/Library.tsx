import { useMemo, useState } from "react";
import { LaunchDialog } from "./LaunchDialog";
import { filterTemplates, formatSeconds, sectorsOf } from "./logic";
import type { Load, Template } from "./types";

/** Mission Library Grid: one card per template, filtered by sector and a text search. */
export function Library({
  templates,
  sector,
  search,
  onFilter,
  canOperate,
  onDeployed,
}: {
  templates: Load<Template[]>;
  sector: string;
  search: string;
  onFilter: (patch: { sector?: string; q?: string }) => void;
  canOperate: boolean;
  onDeployed: (missionId: string) => void;
}) {
  const [launching, setLaunching] = useState<Template | null>(null);
  const all = templates.state === "ready" ? templates.value : [];
  const sectors = useMemo(() => sectorsOf(all), [all]);
  const shown = useMemo(() => filterTemplates(all, sector, search), [all, sector, search]);

  return (
    <section className="library" aria-labelledby="library-title">
      <div className="section-head">
        <h2 id="library-title">Mission library</h2>
        <div className="filters">
          <div className="filter">
            <label htmlFor="filter-sector">Sector</label>
            <select id="filter-sector" value={sector} onChange={(e) => onFilter({ sector: e.target.value })}>
              <option value="">All sectors</option>
              {sectors.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
              {sector && !sectors.includes(sector) && <option value={sector}>{sector}</option>}
            </select>
          </div>
          <div className="filter">
            <label htmlFor="filter-search">Search</label>
            <input
              id="filter-search"
              type="search"
              value={search}
              onChange={(e) => onFilter({ q: e.target.value })}
            />
          </div>
        </div>
      </div>
      {templates.state === "loading" && <p role="status">Loading templates…</p>}
      {templates.state === "error" &&
        (templates.refused ? (
          <p className="empty">Paste an API key above to see the templates.</p>
        ) : (
          <p className="error" role="alert">
            Templates could not be loaded: {templates.message}
          </p>
        ))}
      {templates.state === "ready" && shown.length === 0 && (
        <p className="empty">{all.length ? "No template matches these filters." : "The registry has no templates."}</p>
      )}
      <ul className="grid">
        {shown.map((t) => (
          <li key={t.id}>
            <TemplateCard template={t} canOperate={canOperate} onLaunch={() => setLaunching(t)} />
          </li>
        ))}
      </ul>
      {launching && (
        <LaunchDialog
          template={launching}
          onClose={() => setLaunching(null)}
          onDeployed={(id) => {
            setLaunching(null);
            onDeployed(id);
          }}
        />
      )}
    </section>
  );
}

function TemplateCard({
  template: t,
  canOperate,
  onLaunch,
}: {
  template: Template;
  canOperate: boolean;
  onLaunch: () => void;
}) {
  const headingId = `template-${t.id}`;
  return (
    <article className="card" aria-labelledby={headingId}>
      <div className="card-head">
        <h3 id={headingId}>{t.name}</h3>
        <span className="sector">{t.sector}</span>
      </div>
      <p className="goal">{t.goal}</p>
      <dl className="facts">
        <dt>Departments</dt>
        <dd>{[...new Set(t.departments)].join(", ")}</dd>
        <dt>Budget</dt>
        <dd>{t.defaults.budget}</dd>
        <dt>TTL</dt>
        <dd>{formatSeconds(t.defaults.ttl)}</dd>
        <dt>Risk</dt>
        <dd>
          {t.defaults.risk.level}
          {t.defaults.risk.maxDrawdown != null && ` · max drawdown ${t.defaults.risk.maxDrawdown}`}
        </dd>
      </dl>
      {canOperate && (
        <button type="button" className="primary" onClick={onLaunch}>
          Launch
        </button>
      )}
    </article>
  );
}
