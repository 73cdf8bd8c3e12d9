// The explorer's only hand-written script: the partition picker, the chain's time slider, and
// the charts (TradingView lightweight-charts, served from this folder).
"use strict";

function go(changes) {
  const url = new URL(window.location.href);
  for (const [name, value] of Object.entries(changes)) url.searchParams.set(name, value);
  window.location.assign(url.toString());
}

function pad(n) { return String(n).padStart(2, "0"); }

function minuteAfter(open, minutes) {
  // open is "YYYY-MM-DD HH:MM" IST; the session never crosses midnight.
  const [day, clock] = open.split(" ");
  const [h, m] = clock.split(":").map(Number);
  const total = h * 60 + m + minutes;
  return `${day} ${pad(Math.floor(total / 60))}:${pad(total % 60)}`;
}

function readJson(id) {
  const node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

function newChart(id, height) {
  const node = document.getElementById(id);
  node.style.height = `${height}px`;
  return LightweightCharts.createChart(node, {
    autoSize: true,
    timeScale: { timeVisible: true, secondsVisible: false },
    // One width for every chart's scales, so stacked panes line up bar for bar.
    rightPriceScale: { minimumWidth: 90 },
    crosshair: { mode: 0 },
    leftPriceScale: { visible: false },
  });
}

function points(series, field) {
  const out = [];
  for (let i = 0; i < series.time.length; i++) {
    if (series[field][i] !== null) out.push({ time: series.time[i], value: series[field][i] });
  }
  return out;
}

function drawContract(data) {
  const bars = data.bars;
  const price = newChart("price-chart", 420);
  const oi = newChart("oi-chart", 160);
  const candles = price.addCandlestickSeries();
  candles.setData(bars.time.map((t, i) => ({
    time: t, open: bars.open[i], high: bars.high[i], low: bars.low[i], close: bars.close[i],
  })));
  const volume = price.addHistogramSeries({
    priceScaleId: "volume", color: "#90a4ae", priceFormat: { type: "volume" },
  });
  price.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  volume.setData(points(bars, "volume"));
  if (data.overlay) {
    price.applyOptions({ leftPriceScale: { visible: true, minimumWidth: 90 } });
    oi.applyOptions({ leftPriceScale: { visible: true, minimumWidth: 90 } });
    const future = price.addLineSeries({ priceScaleId: "left", color: "#ff9800", lineWidth: 1 });
    future.setData(points(data.overlay, "close"));
    // The future trades in minutes the option does not: give the OI pane the same time points
    // (whitespace, nothing drawn) so its bars stay under the candles.
    oi.addLineSeries({ visible: false, priceScaleId: "whitespace" })
      .setData(data.overlay.time.map((t) => ({ time: t })));
  }
  // OI as 8.40M rather than 8395350.00: its scale then fits the width the price pane uses.
  oi.addLineSeries({ color: "#3f51b5", priceFormat: { type: "volume" } })
    .setData(points(bars, "oi"));
  price.timeScale().fitContent();
  oi.timeScale().fitContent();
  const follow = (range) => { if (range) oi.timeScale().setVisibleLogicalRange(range); };
  price.timeScale().subscribeVisibleLogicalRangeChange(follow);
  follow(price.timeScale().getVisibleLogicalRange());  // the panes start on the same bars too
}

function drawLife(life) {
  const chart = newChart("life-chart", 220);
  chart.applyOptions({ leftPriceScale: { visible: true }, timeScale: { timeVisible: false } });
  chart.addLineSeries({ color: "#3f51b5", title: "PCR" }).setData(points(life, "pcr_oi"));
  chart.addLineSeries({ priceScaleId: "left", color: "#e91e63", title: "max pain" })
    .setData(points(life, "max_pain"));
  chart.addLineSeries({ priceScaleId: "left", color: "#ff9800", title: "future" })
    .setData(points(life, "future_close"));
  chart.timeScale().fitContent();
}

document.addEventListener("DOMContentLoaded", () => {
  const picker = document.getElementById("partition-picker");
  if (picker) {
    picker.addEventListener("change", () => {
      const [underlying, expiry] = picker.value.split("|");
      const page = ["/chain", "/oi", "/tracker"].includes(location.pathname) ? location.pathname : "/chain";
      window.location.assign(`${page}?underlying=${encodeURIComponent(underlying)}&expiry=${expiry}`);
    });
  }
  const slider = document.getElementById("minute");
  if (slider) {
    slider.addEventListener("change", () => {
      go({ at: minuteAfter(slider.dataset.open, Number(slider.value)) });
    });
  }
  const contract = readJson("chart-data");
  if (contract) drawContract(contract);
  const life = readJson("life-data");
  if (life) drawLife(life);
});
