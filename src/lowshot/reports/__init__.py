"""Run directories -> tables (markdown / CSV / LaTeX / terminal) and figures."""
