// The demo page in the browser: preview and checks before upload, the detector and the
// classifier called in parallel, boxes drawn over the photo, language switched in place.
// Without this script the form posts to /upload and the server renders the same result.
"use strict";

(() => {
  const config = JSON.parse(document.getElementById("web-config").textContent);
  const SVG_NS = "http://www.w3.org/2000/svg";
  // What the model services decode (services/kit/imaging.py SUPPORTED_CONTENT_TYPES).
  const SUPPORTED_TYPES = new Set([
    "image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/bmp", "image/x-bmp",
    "image/x-ms-bmp", "image/webp", "image/gif", "image/tiff",
  ]);
  const PART_SERVICES = { detection: "detector", classification: "classifier" };
  const STATUS_CODES = { 413: "payload_too_large", 502: "bad_gateway", 503: "unavailable", 504: "gateway_timeout" };

  const state = {
    language: config.language,
    results: config.results, // {detection, classification}: a body, an error body, or null while loading
    photoSrc: document.getElementById("result-photo")?.getAttribute("src") ?? null,
    uploadMessage: config.uploadError ? { title: "error.title_upload", code: config.uploadError.code, status: config.uploadError.status } : null,
    untrainedFromModels: [],
    busy: false,
  };

  // ---- messages: the same catalogue and {placeholder} filling as services/web/i18n.py
  function t(key, params = {}) {
    const text = config.messages[state.language][key] ?? config.messages.en[key] ?? key;
    const all = { limit_mb: config.limitMb, ...params };
    return text.replace(/\{(\w+)\}/g, (match, name) => (name in all ? String(all[name]) : match));
  }

  function errorText(code, params = {}) {
    return `error.${code}` in config.messages[state.language] ? t(`error.${code}`, params) : t("error.generic", params);
  }

  function el(tag, attributes = {}, ...children) {
    const node = tag.startsWith("svg:") ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  // ---- box geometry: a port of services/web/boxes.py (overlay_boxes); keep them in step
  function classColour(classId) {
    return `hsl(${((classId * 137.508) % 360).toFixed(1)} 80% ${classId % 2 ? 44 : 32}%)`;
  }

  function round1(value) {
    return Math.round(value * 10) / 10;
  }

  function overlayBoxes(detections, width, height) {
    const fontSize = round1(Math.max(10, Math.max(width, height) / 28));
    const captionHeight = round1(fontSize * 1.3);
    return detections.map((detection) => {
      const box = detection.box;
      const x1 = Math.min(Math.max(box.x1, 0), width);
      const y1 = Math.min(Math.max(box.y1, 0), height);
      const x2 = Math.min(Math.max(box.x2, x1), width);
      const y2 = Math.min(Math.max(box.y2, y1), height);
      const caption = `${detection.label} ${(detection.confidence * 100).toFixed(0)}%`;
      const captionWidth = round1(Math.min(caption.length * fontSize * 0.6 + fontSize * 0.6, width));
      const captionX = Math.min(x1, width - captionWidth);
      const captionY = y1 >= captionHeight ? y1 - captionHeight : y1;
      return {
        x: round1(x1), y: round1(y1), width: round1(x2 - x1), height: round1(y2 - y1),
        colour: classColour(detection.class_id), caption,
        captionX: round1(captionX), captionY: round1(captionY), captionWidth, captionHeight, fontSize,
      };
    });
  }

  // ---- the results, built like templates/_results.html
  const isError = (body) => Boolean(body && typeof body.error === "object" && body.error);
  const percent = (confidence) => `${(confidence * 100).toFixed(1)}%`;

  function modelLine(body) {
    const model = body.model || {};
    const total = body.timings_ms?.total;
    const key = model.trained === false ? "part.model_untrained" : "part.model";
    return el("p", { class: "model-line" }, t(key, { name: model.name ?? "?", ms: total === undefined ? "?" : total.toFixed(0) }));
  }

  function errorBlock(titleKey, body) {
    return el("div", { class: "message message-error", role: "alert" },
      el("strong", {}, t(titleKey)), " ",
      el("span", {}, errorText(body.error.code, { status: body.status ?? "?" })), " ",
      el("small", { class: "details" }, t("error.details", { code: body.error.code, message: body.error.message ?? "" })));
  }

  function loadingBlock(key) {
    return el("p", { class: "loading" }, el("span", { class: "spinner", "aria-hidden": "true" }), t(key));
  }

  function photoFigure(detection) {
    const ready = detection && !isError(detection);
    const alt = ready ? t("results.photo_alt", { count: detection.detections.length }) : t("results.photo_alt_plain");
    const frame = el("div", { class: "photo-frame" }, el("img", { id: "result-photo", src: state.photoSrc, alt }));
    if (ready) {
      const { width, height } = detection.image;
      const overlay = el("svg:svg", { class: "overlay", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" });
      for (const box of overlayBoxes(detection.detections, width, height)) {
        overlay.append(el("svg:g", { class: "detection-box" },
          el("svg:rect", { x: box.x, y: box.y, width: box.width, height: box.height, fill: "none", stroke: box.colour, "stroke-width": 3, "vector-effect": "non-scaling-stroke" }),
          el("svg:rect", { x: box.captionX, y: box.captionY, width: box.captionWidth, height: box.captionHeight, fill: box.colour }),
          el("svg:text", { x: round1(box.captionX + box.fontSize * 0.3), y: round1(box.captionY + box.fontSize), "font-size": box.fontSize, fill: "#fff" }, box.caption)));
      }
      frame.append(overlay);
    }
    return el("figure", { class: "photo-card card" }, frame);
  }

  function detectionPart(body) {
    const section = el("section", { id: "detection-part", class: "card part", "aria-labelledby": "detection-heading" },
      el("h3", { id: "detection-heading" }, t("detect.heading")));
    if (!body || isError(body)) {
      section.append(body ? errorBlock("error.title_detect", body) : loadingBlock("detect.loading"));
      return section;
    }
    const rows = body.detections.map((item) => el("tr", {},
      el("td", {}, el("span", { class: "swatch", "data-class-id": item.class_id, "aria-hidden": "true" },
        el("svg:svg", { viewBox: "0 0 1 1", width: 12, height: 12 }, el("svg:rect", { width: 1, height: 1, fill: classColour(item.class_id) }))), item.label),
      el("td", { class: "num" }, percent(item.confidence)),
      el("td", { class: "box-coords" }, [item.box.x1, item.box.y1, item.box.x2, item.box.y2].map((v) => v.toFixed(0)).join(", "))));
    if (rows.length === 0) rows.push(el("tr", { class: "empty-row" }, el("td", { colspan: 3 }, t("detect.none"))));
    section.append(
      el("div", { class: "table-scroll" }, el("table", { class: "detections" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("detect.col_label")), el("th", { scope: "col", class: "num" }, t("detect.col_confidence")), el("th", { scope: "col" }, t("detect.col_box")))),
        el("tbody", {}, ...rows))),
      modelLine(body));
    return section;
  }

  function classificationPart(body) {
    const section = el("section", { id: "classification-part", class: "card part", "aria-labelledby": "classification-heading" },
      el("h3", { id: "classification-heading" }, t("classify.heading")));
    if (!body || isError(body)) {
      section.append(body ? errorBlock("error.title_classify", body) : loadingBlock("classify.loading"));
      return section;
    }
    const rows = body.predictions.map((item) => el("tr", {},
      el("td", {}, el("span", { class: "prediction-label" }, item.label),
        el("svg:svg", { class: "bar", viewBox: "0 0 100 1", preserveAspectRatio: "none", "aria-hidden": "true", focusable: "false" },
          el("svg:rect", { class: "bar-track", width: 100, height: 1 }),
          el("svg:rect", { class: "bar-fill", width: (item.confidence * 100).toFixed(2), height: 1 }))),
      el("td", { class: "num" }, percent(item.confidence))));
    if (rows.length === 0) rows.push(el("tr", { class: "empty-row" }, el("td", { colspan: 2 }, t("classify.none"))));
    section.append(
      el("table", { class: "predictions" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("classify.col_label")), el("th", { scope: "col", class: "num" }, t("classify.col_confidence")))),
        el("tbody", {}, ...rows)),
      modelLine(body));
    return section;
  }

  function renderResults() {
    const container = document.getElementById("results");
    if (!container || !state.results) return;
    const { detection, classification } = state.results;
    container.replaceChildren(
      el("h2", { id: "results-heading" }, t("results.heading")),
      el("div", { class: "results-grid" }, photoFigure(detection), detectionPart(detection), classificationPart(classification)));
    container.hidden = false;
    renderBanner();
  }

  // ---- the stand-in banner: from /v1/models at load, and from every answer's model.trained
  function renderBanner() {
    const banner = document.getElementById("banner");
    if (!banner) return;
    const services = new Set(state.untrainedFromModels);
    for (const [part, service] of Object.entries(PART_SERVICES)) {
      if (state.results?.[part]?.model?.trained === false) services.add(service);
    }
    const ordered = Object.values(PART_SERVICES).filter((service) => services.has(service));
    banner.hidden = ordered.length === 0;
    if (ordered.length) {
      const models = ordered.map((service) => t(`banner.${service}`)).join(t("banner.and"));
      document.getElementById("banner-text").textContent = t("banner.untrained", { models });
    }
  }

  // ---- API keys (off unless the stack sets API_KEYS): a 401 asks for the key once, kept
  // for this tab only, and sent as X-API-Key on every call
  const KEY_STORE = "vision-api-key";
  function apiHeaders() {
    const key = sessionStorage.getItem(KEY_STORE);
    return key ? { Accept: "application/json", "X-API-Key": key } : { Accept: "application/json" };
  }
  function askForKey(body) {
    const message = (body && body.error && body.error.message) || "API key";
    const key = window.prompt(message);
    if (!key) return false;
    sessionStorage.setItem(KEY_STORE, key.trim());
    return true;
  }

  async function loadModelList() {
    try {
      const response = await fetch("/v1/models", { headers: apiHeaders() });
      const body = await response.json();
      state.untrainedFromModels = (body.models || [])
        .filter((entry) => entry.weights && entry.weights.trained === false)
        .map((entry) => entry.service);
    } catch {
      state.untrainedFromModels = []; // the banner then comes from the answers themselves
    }
    renderBanner();
  }

  // ---- calling the APIs: never throws; failures become the stack's error shape
  async function callApi(url, file, keyAsked = false) {
    const form = new FormData();
    form.append("image", file, file.name);
    let response;
    const keyUsed = sessionStorage.getItem(KEY_STORE);
    try {
      response = await fetch(url, { method: "POST", body: form, headers: apiHeaders() });
    } catch {
      return { error: { code: "network_error", message: "fetch failed" }, status: 0 };
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null; // e.g. nginx's HTML page for 502/504
    }
    // The other call may have asked already (both run at once): then only retry.
    const keyChanged = sessionStorage.getItem(KEY_STORE) !== keyUsed;
    if (response.status === 401 && !keyAsked && (keyChanged || askForKey(body))) {
      return callApi(url, file, true);
    }
    if (body && typeof body === "object" && !Array.isArray(body)) {
      if (isError(body)) return { ...body, status: response.status };
      if (response.ok) return body;
    }
    const code = STATUS_CODES[response.status] || (response.ok ? "bad_gateway" : "http_error");
    return { error: { code, message: `HTTP ${response.status} ${response.statusText}`.trim() }, status: response.status };
  }

  // ---- the upload form
  function formatSize(bytes) {
    return bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
  }

  function checkFile(file) {
    if (!file) return { key: "check.no_file" };
    if (file.size > config.maxBodyBytes) return { key: "check.too_large", params: { name: file.name, size: formatSize(file.size) } };
    if (file.type && !file.type.startsWith("image/")) return { key: "check.not_image", params: { name: file.name, type: file.type } };
    if (file.type && !SUPPORTED_TYPES.has(file.type)) return { code: "unsupported_image_format" };
    if (file.size === 0) return { code: "empty_image" };
    return null; // no type known: the server decides
  }

  function renderUploadMessage() {
    const box = document.getElementById("upload-message");
    if (!box) return;
    const message = state.uploadMessage;
    box.hidden = !message;
    if (!message) return box.replaceChildren();
    const text = message.key ? t(message.key, message.params) : errorText(message.code, { status: message.status ?? "?" });
    box.replaceChildren(...(message.title ? [el("strong", {}, t(message.title)), " "] : []), el("span", {}, text));
  }

  function setupForm() {
    const form = document.getElementById("upload-form");
    if (!form) return;
    const input = document.getElementById("photo-input");
    const dropzone = document.getElementById("dropzone");
    const preview = document.getElementById("preview");
    const button = document.getElementById("submit-button");
    const results = document.getElementById("results");
    const status = document.getElementById("status");
    let previewUrl = null;
    form.noValidate = true; // our own message, in the page's language, instead of the browser's

    function choose(file) {
      const problem = checkFile(file);
      state.uploadMessage = problem;
      renderUploadMessage();
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = problem ? null : URL.createObjectURL(file);
      preview.hidden = !previewUrl;
      if (previewUrl) preview.src = previewUrl;
      else preview.removeAttribute("src");
      return !problem;
    }

    const threshold = document.getElementById("conf-threshold");
    const thresholdValue = document.getElementById("conf-threshold-value");
    threshold.addEventListener("input", () => {
      thresholdValue.textContent = `${Math.round(threshold.value * 100)}%`;
    });

    input.addEventListener("change", () => choose(input.files[0]));
    // A drop anywhere else would make the browser leave the page to show the file.
    for (const type of ["dragover", "drop"]) window.addEventListener(type, (event) => event.preventDefault());
    dropzone.addEventListener("dragover", () => dropzone.classList.add("is-dragover"));
    for (const type of ["dragleave", "dragend", "drop"]) dropzone.addEventListener(type, () => dropzone.classList.remove("is-dragover"));
    dropzone.addEventListener("drop", (event) => {
      const files = event.dataTransfer?.files;
      if (!files || files.length === 0) return;
      input.files = files;
      choose(files[0]);
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (state.busy) return;
      const file = input.files[0];
      if (!choose(file)) {
        input.focus();
        return;
      }
      state.busy = true;
      state.photoSrc = previewUrl;
      state.results = { detection: null, classification: null };
      button.disabled = true;
      button.textContent = t("upload.busy");
      results.setAttribute("aria-busy", "true");
      status.textContent = t("upload.busy");
      renderResults();
      const detectUrl = `/v1/detect?conf_threshold=${encodeURIComponent(threshold.value)}`;
      const parts = Object.entries({ detection: detectUrl, classification: "/v1/classify?top_k=5" })
        .map(async ([part, url]) => {
          const body = await callApi(url, file);
          state.results[part] = body;
          renderResults();
        });
      await Promise.all(parts);
      state.busy = false;
      button.disabled = false;
      button.textContent = t("upload.submit");
      results.removeAttribute("aria-busy");
      status.textContent = summary();
    });
  }

  function summary() {
    const { detection, classification } = state.results;
    if (isError(detection) || isError(classification)) return t("results.summary_failed");
    const top = classification.predictions[0];
    return t("results.summary", { objects: detection.detections.length, top: top ? `${top.label} (${percent(top.confidence)})` : "?" });
  }

  // ---- language
  function applyStaticTexts() {
    document.documentElement.lang = state.language;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-attr]")) {
      for (const pair of node.dataset.i18nAttr.split(";")) {
        const [attribute, key] = pair.split(":");
        node.setAttribute(attribute, t(key));
      }
    }
    for (const link of document.querySelectorAll(".lang-switch [data-lang]")) {
      if (link.dataset.lang === state.language) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
    const button = document.getElementById("submit-button");
    if (button && state.busy) button.textContent = t("upload.busy");
    const docsTitle = document.querySelector("h1[data-i18n='docs.title']");
    document.title = docsTitle ? `${t("docs.title")} · ${t("app.title")}` : t("app.title");
  }

  function setLanguage(language, remember) {
    state.language = language;
    if (remember) document.cookie = `lang=${encodeURIComponent(language)}; path=/; max-age=31536000; SameSite=Lax`;
    applyStaticTexts();
    renderUploadMessage();
    renderResults();
    renderBanner();
  }

  function browserLanguage() {
    for (const tag of navigator.languages || [navigator.language]) {
      const primary = (tag || "").toLowerCase().split("-")[0];
      if (primary === "zh") return "zh-CN";
      if (primary === "en") return "en";
    }
    return null;
  }

  for (const link of document.querySelectorAll(".lang-switch [data-lang]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      setLanguage(link.dataset.lang, true);
    });
  }
  if (config.languageSource === "default") {
    const preferred = browserLanguage();
    if (preferred && preferred !== state.language) setLanguage(preferred, false);
  }
  setupForm();
  if (document.getElementById("upload-form")) loadModelList();
})();
