// The one "Cancel this mission?" confirmation, from the tracker and from the flow view.
import { type ReactNode, useEffect, useId, useRef } from "react";

export function ConfirmCancel({ children, onYes, onNo }: { children: ReactNode; onYes: () => void; onNo: () => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const title = useId();
  useEffect(() => {
    if (dialog.current && !dialog.current.open) dialog.current.showModal();
  }, []);
  return (
    <dialog ref={dialog} className="confirm" role="alertdialog" aria-labelledby={title} onClose={onNo}>
      <h2 id={title}>Cancel this mission?</h2>
      <p>{children}</p>
      <footer>
        <button type="button" onClick={onNo}>
          Keep running
        </button>
        <button type="button" className="danger" onClick={onYes}>
          Cancel mission
        </button>
      </footer>
    </dialog>
  );
}
