// Live progress for a job page: polls the job's status URL until the job is finished.
(function () {
  const section = document.querySelector("[data-job-live]");
  if (!section) return;
  const url = section.dataset.jobStatusUrl;
  const show = (name, value) => {
    const element = section.querySelector(`[data-job-field="${name}"]`);
    if (!element) return;
    if (element.tagName === "PROGRESS") element.value = value;
    else element.textContent = value ?? "";
  };
  const poll = async () => {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) return;
    const job = await response.json();
    ["status_label", "percent", "done", "total", "message"].forEach((name) => show(name, job[name]));
    if (job.finished) window.location.reload();
    else window.setTimeout(poll, 1500);
  };
  window.setTimeout(poll, 1500);
})();
