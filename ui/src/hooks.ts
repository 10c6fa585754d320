import { useEffect, useRef, useState, useSyncExternalStore } from "react";
import { type LinkState, linkState, onLinkState } from "./live";
import { type UrlState, readUrl, writeUrl } from "./logic";

/** Filters and the open mission, kept in the address bar. */
export function useUrlState(): [UrlState, (patch: Partial<UrlState>, push?: boolean) => void] {
  const [state, setState] = useState(() => readUrl(window.location.search));
  const current = useRef(state);
  current.current = state;
  useEffect(() => {
    const onPop = () => setState(readUrl(window.location.search));
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);
  const update = (patch: Partial<UrlState>, push = false) => {
    const next = { ...current.current, ...patch };
    current.current = next;
    const url = writeUrl(next) || window.location.pathname;
    if (push) window.history.pushState(null, "", url);
    else window.history.replaceState(null, "", url);
    setState(next);
  };
  return [state, update];
}

/** The clock, ticking every `ms` (for "time left"). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

export function useLinkState(): LinkState {
  const [state, setState] = useState(linkState());
  useEffect(() => onLinkState((next) => setState(next)), []);
  return state;
}

/** Whether a media query matches, following changes (narrow screens lay the flow out top down). */
export function useMedia(query: string): boolean {
  const [matches, setMatches] = useState(() => window.matchMedia(query).matches);
  useEffect(() => {
    const list = window.matchMedia(query);
    const onChange = () => setMatches(list.matches);
    list.addEventListener("change", onChange);
    return () => list.removeEventListener("change", onChange);
  }, [query]);
  return matches;
}

// One clock for the whole page, ticking once a second while something shows a countdown: each
// countdown re-renders alone, not the row (or the list) around it.
const clock = { now: Date.now(), timer: 0 as ReturnType<typeof setInterval> | 0, listeners: new Set<() => void>() };

function watchClock(listener: () => void): () => void {
  clock.listeners.add(listener);
  if (!clock.timer) {
    clock.now = Date.now();
    clock.timer = setInterval(() => {
      clock.now = Date.now();
      for (const l of clock.listeners) l();
    }, 1000);
  }
  return () => {
    clock.listeners.delete(listener);
    if (!clock.listeners.size && clock.timer) {
      clearInterval(clock.timer);
      clock.timer = 0;
    }
  };
}

export function useClock(): number {
  return useSyncExternalStore(watchClock, () => clock.now);
}
