/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The bundle is served by the service at /ui/ (index.html also at /), and committed:
// `make ui` writes it to server/static/ui. UI_OUT_DIR builds elsewhere (the reproducibility test).
export default defineConfig({
  base: "/ui/",
  plugins: [react()],
  build: {
    outDir: process.env.UI_OUT_DIR ?? "../server/static/ui",
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 1000,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
