import { useEffect, useState } from "react";

/**
 * Whether Airflow's UI shows its dark colour mode. Airflow's theme provider (next-themes with
 * ``attribute: "class"``) puts ``dark`` or ``light`` on ``<html>``; the mode can change while a
 * page is open (the user's menu), so the class is watched.
 */
export function isDark(): boolean {
  return document.documentElement.classList.contains("dark");
}

export function useDarkMode(): boolean {
  const [dark, setDark] = useState(isDark);
  useEffect(() => {
    const watch = new MutationObserver(() => setDark(isDark()));
    watch.observe(document.documentElement, { attributes: true, attributeFilter: ["class"] });
    setDark(isDark());
    return () => watch.disconnect();
  }, []);
  return dark;
}
