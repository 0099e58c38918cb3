/* lossvista page: draws the scene embedded in this page with Plotly (inlined before this script).
 *
 * The numbers (values, colours, heights, levels, lines) come from Python
 * (pipeline/render/page/scene.py); this script only maps them onto Plotly traces, switches
 * planes, views and colouring arrays, and shows the values under the cursor. Grid arrays of
 * the scene are a[i][j] at (xs[i], ys[j]); Plotly wants z[row][col] at (x[col], y[row]), hence
 * transpose().
 *
 * window.lossvista = {scene, state, show(change), ready} for the page's tests and for users'
 * consoles: show({plane: 1, view: "2d", array: "accuracy"}) returns a promise of the drawing.
 * A view is an entry of VIEWS below: a function (plane scene, array) -> {data, layout}.
 */
(function () {
  "use strict";
  var scene = JSON.parse(document.getElementById("lossvista-scene").textContent);
  var plot = document.getElementById("lossvista-plot");
  var readout = document.getElementById("lossvista-readout");
  var select = document.getElementById("lossvista-array");
  var style = scene.style;
  var state = {plane: scene.initial.plane, view: scene.initial.view, array: scene.initial.array};
  var TEXT = "#222";

  function transpose(a) {
    var out = [];
    for (var j = 0; j < a[0].length; j++) {
      var row = [];
      for (var i = 0; i < a.length; i++) row.push(a[i][j]);
      out.push(row);
    }
    return out;
  }

  function colorscale(c) {
    if (!c.band) return style.colormap;
    var f = (c.cmax - c.cmin) / (c.band[1] - c.cmin);
    return style.colormap.map(function (s) { return [s[0] * f, s[1]]; })
      .concat([[f, style.divergent], [1, style.divergent]]);
  }

  // colour map, range and bar of a surface (cmin/cmax) or a contour trace (zmin/zmax)
  function colour(p, array, range) {
    var c = p.colour[array];
    var out = {
      colorscale: colorscale(c),
      colorbar: {title: {text: c.label + (c.log ? " (log scale)" : ""), side: "right"},
                 tickvals: c.ticks.vals, ticktext: c.ticks.text, len: 0.8, thickness: 16, x: 1.0}
    };
    out[range + "min"] = c.cmin;
    out[range + "max"] = c.band ? c.band[1] : c.cmax;
    return out;
  }

  function hoverText(p, array) {
    var label = p.colour[array] ? p.colour[array].label : array;
    return p.axes[0] + " %{x:.4g}<br>" + p.axes[1] + " %{y:.4g}<br>" + label + " %{customdata:.6g}<extra></extra>";
  }

  function pathTraces(p, three) {
    var t = p.path;
    if (!t) return [];
    var n = t.x.length;
    var unit = t.unit || "epoch";
    var info = t.epoch.map(function (e, k) { return [e, t.loss[k], t.surface_loss[k], t.residual[k]]; });
    var hover = unit + " %{customdata[0]}<br>checkpoint loss %{customdata[1]:.4g}<br>loss on the plane " +
      "%{customdata[2]:.4g}<br>off the plane %{customdata[3]:.1%}<extra>descent path</extra>";
    var kind = three ? "scatter3d" : "scatter";
    function at(k) {
      var o = {x: [t.x[k]], y: [t.y[k]]};
      if (three) o.z = [t.z[k]];
      return o;
    }
    var line = {type: kind, mode: "lines+markers", name: "descent path", x: t.x, y: t.y, customdata: info,
                hovertemplate: hover, meta: "path", line: {color: style.path, width: three ? 7 : 3},
                marker: {color: style.path, size: three ? 3 : 5}};
    if (three) line.z = t.z;
    var start = Object.assign(at(0), {type: kind, mode: "markers", name: "start (" + unit + " " + t.epoch[0] + ")",
      customdata: [info[0]], hovertemplate: hover, meta: "path",
      marker: {color: style.start, size: three ? 8 : 12, symbol: "square", line: {color: style.path, width: 2}}});
    var end = Object.assign(at(n - 1), {type: kind, mode: "markers", name: "end (" + unit + " " + t.epoch[n - 1] + ")",
      customdata: [info[n - 1]], hovertemplate: hover, meta: "path",
      marker: {color: style.end, size: three ? 8 : 16, symbol: three ? "diamond" : "star", line: {color: "#000", width: 1}}});
    var traces = [line, start, end];
    if (!three) traces.forEach(function (tr) { tr.cliponaxis = false; });  // markers on the plane's edge
    return traces;
  }

  function criticalTraces(p, three) {
    var c = p.critical;
    if (!c) return [];
    var codes = [];
    c.code.forEach(function (k) { if (codes.indexOf(k) < 0) codes.push(k); });
    return codes.sort().map(function (code) {
      var s = style.critical[String(code)];
      var idx = [];
      c.code.forEach(function (k, n) { if (k === code) idx.push(n); });
      var pick = function (a) { return idx.map(function (n) { return a[n]; }); };
      var tr = {type: three ? "scatter3d" : "scatter", mode: "markers", x: pick(c.x), y: pick(c.y),
                name: s.label + " (" + idx.length + ")", meta: "critical",
                customdata: idx.map(function (n) { return [c.value[n], c.persistence[n]]; }),
                hovertemplate: s.label + "<br>" + p.height_label + " %{customdata[0]:.4g}<br>persistence " +
                  "%{customdata[1]:.4g}<extra>critical point</extra>",
                marker: {color: s.color, size: three ? 6 : 11, symbol: three ? "circle" : s.symbol,
                         line: {color: "#000", width: 1}}};
      if (three) tr.z = pick(c.z);
      else tr.cliponaxis = false;
      return tr;
    });
  }

  function axis(title) {
    return {title: {text: title}, color: TEXT, gridcolor: "#ddd", zeroline: false};
  }

  function surface3d(p, array) {
    var z0 = p.zrange[0], z1 = p.zrange[1], pad = 0.04 * (z1 - z0 || 1);
    var data = [Object.assign({type: "surface", name: p.height_label, meta: "grid", x: p.xs, y: p.ys,
      z: transpose(p.heights), surfacecolor: transpose(p.colour[array].values),
      customdata: transpose(p.values[array]), hovertemplate: hoverText(p, array), connectgaps: false,
      lighting: {ambient: 0.75, diffuse: 0.55, specular: 0.08, roughness: 0.9}, showlegend: false},
      colour(p, array, "c"))];
    if (p.contours.x.length) {
      data.push({type: "scatter3d", mode: "lines", name: "contour lines (" + p.height_label + ")", x: p.contours.x,
                 y: p.contours.y, z: p.contours.z, hoverinfo: "skip", connectgaps: false,
                 line: {color: "rgba(25,25,25,0.8)", width: 2}});
    }
    data = data.concat(pathTraces(p, true), criticalTraces(p, true));
    var layout = {
      scene: {xaxis: axis(p.axes[0]), yaxis: axis(p.axes[1]),
              zaxis: Object.assign(axis(p.height_label), {range: [z0 - pad / 2, z1 + pad]}),  // heights are rounded
              aspectmode: "manual", aspectratio: p.aspect, camera: {eye: p.camera}}
    };
    return {data: data, layout: layout};
  }

  function contours2d(p, array) {
    var c = p.colour[array];
    var grey = c.grey_from === null ? null : c.values.map(function (row) {
      return row.map(function (v) { return v !== null && v >= c.grey_from ? 1 : null; });
    });
    // line colours spread over the levels (Plotly's rule for contour lines): line_scale maps them back
    var bar = colour(p, array, "z").colorbar;
    var data = [{type: "contour", name: c.label, meta: "grid", x: p.xs, y: p.ys,
      z: transpose(c.values), customdata: transpose(p.values[array]), hovertemplate: hoverText(p, array),
      connectgaps: false, zauto: false, zmin: c.levels.start, zmax: c.levels.end, colorscale: c.line_scale,
      colorbar: bar, contours: {coloring: "lines", start: c.levels.start, end: c.levels.end, size: c.levels.size},
      line: {width: 1.8}, showlegend: false}];
    if (grey && grey.some(function (row) { return row.some(function (v) { return v !== null; }); })) {
      data.push({type: "heatmap", name: "above the cap or not usable", x: p.xs, y: p.ys, z: transpose(grey),
                 colorscale: [[0, style.divergent], [1, style.divergent]], showscale: false, opacity: 0.45,
                 hoverinfo: "skip", zsmooth: false});
    }
    data = data.concat(pathTraces(p, false), criticalTraces(p, false));
    var dx = p.xs[p.xs.length - 1] - p.xs[0], dy = p.ys[p.ys.length - 1] - p.ys[0];
    var equal = dy / dx >= 0.25 && dy / dx <= 4;  // distances true to scale unless very elongated
    var layout = {
      xaxis: Object.assign(axis(p.axes[0]), {range: [p.xs[0], p.xs[p.xs.length - 1]], showline: true,
                                             mirror: true, linecolor: "#888", constrain: "domain"}),
      yaxis: Object.assign(axis(p.axes[1]), {range: [p.ys[0], p.ys[p.ys.length - 1]], showline: true,
                                             mirror: true, linecolor: "#888", constrain: "domain"}),
      plot_bgcolor: "#fff", legend: {orientation: "h", x: 0, y: -0.12, yanchor: "top"},
      margin: {l: 60, r: 10, t: 36, b: 80}
    };
    if (equal) layout.yaxis.scaleanchor = "x";
    return {data: data, layout: layout};
  }

  var VIEWS = {"3d": surface3d, "2d": contours2d};

  // the figure of a state ({plane, view, array}), drawn or not
  function figure(st) {
    var p = scene.planes[st.plane];
    var fig = VIEWS[st.view](p, st.array);
    fig.layout = Object.assign({
      paper_bgcolor: "#fff", font: {color: TEXT, size: 13}, margin: {l: 60, r: 10, t: 36, b: 50},
      title: {text: p.title + " · " + p.colour[st.array].label, x: 0.01, font: {size: 15}},
      legend: {orientation: "h", x: 0, y: -0.06, yanchor: "top"}, hovermode: "closest",
      uirevision: st.plane + "/" + st.view
    }, fig.layout);
    return fig;
  }

  function nearest(a, v) {
    var best = 0;
    for (var k = 1; k < a.length; k++) if (Math.abs(a[k] - v) < Math.abs(a[best] - v)) best = k;
    return best;
  }

  function span(cls, text, attrs) {
    var s = document.createElement("span");
    s.className = cls;
    s.textContent = text;
    Object.keys(attrs || {}).forEach(function (k) { s.setAttribute(k, attrs[k]); });
    return s;
  }

  function showPoint(p, x, y) {
    var i = nearest(p.xs, x), j = nearest(p.ys, y);
    readout.textContent = "";
    readout.dataset.i = i;
    readout.dataset.j = j;
    var at = function (v) { return String(Number(v.toPrecision(6))); };
    readout.appendChild(span("where", p.axes[0] + " = " + at(p.xs[i]) + ", " + p.axes[1] + " = " + at(p.ys[j]) +
                             "  (i = " + i + ", j = " + j + ")"));
    Object.keys(p.values).forEach(function (name) {
      var v = p.values[name][i][j];
      var inexact = (p.inexact[name] || []).some(function (ij) { return ij[0] === i && ij[1] === j; });
      var label = p.colour[name] ? p.colour[name].label : name;
      var text = v === null ? "not finite" : (inexact ? "≥ " : "") + String(v);
      readout.appendChild(span("value", label + " = " + text,
                               {"data-array": name, "data-value": v === null ? "null" : String(v)}));
    });
  }

  function showPath(p, k) {
    var t = p.path;
    readout.textContent = "";
    delete readout.dataset.i;
    delete readout.dataset.j;
    readout.appendChild(span("where", "descent path, " + (t.unit || "epoch") + " " + t.epoch[k]));
    readout.appendChild(span("value", "checkpoint loss = " + t.loss[k]));
    readout.appendChild(span("value", "loss on the plane = " + t.surface_loss[k]));
    readout.appendChild(span("value", "off the plane = " + (100 * t.residual[k]).toFixed(1) + "%"));
  }

  function onHover(ev) {
    var pt = ev.points && ev.points[0];
    if (!pt) return;
    var p = scene.planes[state.plane];
    if (pt.data.meta === "grid") showPoint(p, pt.x, pt.y);
    else if (pt.data.meta === "path" && pt.data.mode === "lines+markers") showPath(p, pt.pointNumber);
  }

  function syncControls() {
    var p = scene.planes[state.plane];
    document.querySelectorAll("[data-plane]").forEach(function (el) {
      var on = Number(el.dataset.plane) === state.plane;
      if (el.tagName === "BUTTON") el.setAttribute("aria-pressed", String(on));
      else el.hidden = !on;
    });
    document.querySelectorAll("button[data-view]").forEach(function (el) {
      el.setAttribute("aria-pressed", String(el.dataset.view === state.view));
    });
    select.textContent = "";
    Object.keys(p.colour).forEach(function (name) {
      var o = document.createElement("option");
      o.value = name;
      o.textContent = p.colour[name].label;
      o.selected = name === state.array;
      select.appendChild(o);
    });
  }

  var hooked = false;
  function show(change) {
    Object.assign(state, change || {});
    var p = scene.planes[state.plane];
    if (!p.colour[state.array]) state.array = "loss";
    syncControls();
    var fig = figure(state);
    var config = {displaylogo: false, responsive: true,
                  toImageButtonOptions: {filename: "lossvista_" + p.kind + "_" + state.view, scale: 2}};
    return Plotly.react(plot, fig.data, fig.layout, config).then(function () {
      if (!hooked) {
        plot.on("plotly_hover", onHover);
        hooked = true;
      }
      document.documentElement.dataset.drawn = p.kind + "/" + state.view + "/" + state.array;
      return state;
    });
  }

  document.querySelectorAll("button[data-plane]").forEach(function (el) {
    el.addEventListener("click", function () { show({plane: Number(el.dataset.plane)}); });
  });
  document.querySelectorAll("button[data-view]").forEach(function (el) {
    el.addEventListener("click", function () { show({view: el.dataset.view}); });
  });
  select.addEventListener("change", function () { show({array: select.value}); });

  plot.textContent = "";
  window.lossvista = {scene: scene, state: state, show: show, figure: figure, views: Object.keys(VIEWS),
                      ready: show()};
})();
