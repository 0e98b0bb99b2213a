// The live progress of a bulk import: polls the import's progress JSON every second and
// moves the bar and the figures, until the import has finished. The page works without
// this file (reload it to update); CSP: no inline script.
(() => {
  const card = document.getElementById("import-progress");
  if (!card || card.dataset.done === "true") return;
  const url = card.dataset.progressUrl;
  const bar = document.getElementById("import-bar");
  const number = (n) => n.toLocaleString("en-US");
  // Seconds as the server writes durations: "42 s", "3 min 5 s", "2 h 10 min".
  const duration = (s) => {
    const whole = Math.round(s);
    if (whole < 60) return `${whole} s`;
    const minutes = Math.floor(whole / 60);
    if (minutes < 60) return `${minutes} min ${whole % 60} s`;
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  };
  const set = (id, text) => {
    const element = document.getElementById(id);
    if (element) element.textContent = text;
  };
  const labels = {
    running: ["running", "Importing"],
    completed: ["ok", "Completed"],
    failed: ["error", "Failed"],
    validated: ["", "Ready to start"],
    queued: ["warn", "Queued"],
  };

  function show(p) {
    bar.max = Math.max(p.accepted, 1);
    bar.value = p.imported;
    bar.textContent = `${p.percent}%`;
    set("import-percent", `${Math.floor(p.percent)}%`);
    set("count-imported", number(p.imported));
    const waiting = p.status === "queued" ? "waiting for its turn" : "waiting for the worker";
    set("import-rate", p.rate_per_s ? `${p.rate_per_s.toFixed(1)} a second` : waiting);
    const queued = document.getElementById("import-queued");
    if (queued) queued.hidden = !p.queued_behind;
    const behind = document.getElementById("import-queued-behind");
    if (behind && p.queued_behind) {
      behind.textContent = p.queued_behind;
      behind.href = `/admin/imports/${p.queued_behind}`;
    }
    if (p.done) set("import-left", `took ${duration(p.elapsed_s)}`);
    else if (p.seconds_left !== null) set("import-left", `about ${duration(p.seconds_left)} left`);
    const badge = document.querySelector("[data-status]");
    if (badge && badge.dataset.status !== p.status && labels[p.status]) {
      const [kind, text] = labels[p.status];
      badge.className = `badge ${kind}`;
      badge.dataset.status = p.status;
      badge.textContent = text;
    }
  }

  async function tick() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) {
        const progress = await response.json();
        show(progress);
        if (progress.done) {
          const step = document.getElementById("step-import");
          if (step && progress.status === "completed") step.className = "done";
          // The final figures and any error are rendered by the server.
          if (progress.status === "failed") window.location.reload();
          return;
        }
      }
    } catch (error) {
      // The server restarting: keep trying.
    }
    window.setTimeout(tick, 1000);
  }
  window.setTimeout(tick, 1000);
})();
