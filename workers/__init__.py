"""ARQ workers: they run agent jobs, meter them, enforce deadlines, retry, and recover crashes."""
