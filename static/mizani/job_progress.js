// Live progress for a job page: polls the job's status URL until the job is finished. A failed poll
// (the server busy, the network down) is retried, less often each time, and the page says so.
(function () {
  const section = document.querySelector("[data-job-live]");
  if (!section) return;
  const url = section.dataset.jobStatusUrl;
  const every = 1500;
  const longest = 30000;
  const show = (name, value) => {
    const element = section.querySelector(`[data-job-field="${name}"]`);
    if (!element) return;
    if (element.tagName === "PROGRESS") element.value = value;
    else element.textContent = value ?? "";
  };
  let delay = every;
  const retry = () => {
    show("message", `No news of the job: trying again in ${Math.round(delay / 1000)} s (or reload the page).`);
    window.setTimeout(poll, delay);
    delay = Math.min(delay * 2, longest);
  };
  const poll = async () => {
    let job;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return retry();
      job = await response.json();
    } catch (error) {
      return retry();
    }
    delay = every;
    ["status_label", "percent", "done", "total", "message"].forEach((name) => show(name, job[name]));
    if (job.finished) window.location.reload();
    else window.setTimeout(poll, every);
  };
  window.setTimeout(poll, every);
})();
