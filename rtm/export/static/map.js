/* rtm map.html: builds the Leaflet map from the JSON embedded in the page.
 * Every user-supplied string reaches the page through textContent (DOM) or esc()
 * (the layer control, which takes HTML): never as markup. */
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('rtm-data').textContent);

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  }
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }
  function num(x, digits) {
    return Number(x).toLocaleString('en-GB', {maximumFractionDigits: digits, minimumFractionDigits: digits});
  }
  function pct(x) { var p = 100 * x; return (p < 10 ? num(p, 1) : num(p, 0)) + '%'; }

  function placePopup(p) {
    var box = el('div', null, 'rtm-popup');
    box.appendChild(el('h3', p.kind + ' #' + p.rank));
    var facts = el('ul', null, 'rtm-facts');
    facts.appendChild(el('li', 'Relative risk: ' + num(p.mean_rrs, 1) + ' on average, up to ' +
      num(p.max_rrs, 1) + ' (the lowest-risk cell of the area scores 1)'));
    facts.appendChild(el('li', 'Size: ' + num(p.area_ha, 1) + ' ha (' + p.cells + ' cells)'));
    facts.appendChild(el('li', data.crime_cap + ' here in the period: ' + p.events));
    if (p.recent !== null && p.recent !== undefined) {
      facts.appendChild(el('li', 'Recent ' + data.crime + ' nearby: ' + p.recent + ' (' + data.recent_label + ')'));
    }
    box.appendChild(facts);
    box.appendChild(el('p', p.why.length ? 'Why it is risky:' : 'No selected factor covers this place.', 'rtm-why'));
    var list = el('ul', null, 'rtm-factors');
    p.why.forEach(function (f) {
      var effect = f.protective ? 'lowers risk: \u00f7' + num(f.rrv, 2) : 'risk \u00d7' + num(f.rrv, 2);
      list.appendChild(el('li', f.text + ' \u2014 ' + effect + ' (' + pct(f.share) + ' of the place)'));
    });
    box.appendChild(list);
    return box;
  }

  function featurePopup(name, attrs) {
    var box = el('div', null, 'rtm-popup');
    box.appendChild(el('h3', name));
    var table = el('table');
    Object.keys(attrs || {}).forEach(function (key) {
      var row = el('tr');
      row.appendChild(el('th', key));
      row.appendChild(el('td', attrs[key]));
      table.appendChild(row);
    });
    box.appendChild(table);
    return box;
  }

  var wide = window.innerWidth >= 700 && window.innerHeight >= 500;
  var map = L.map('map', {preferCanvas: true, zoomSnap: 0.25});
  window.rtm = {map: map, ready: false, layers: {}, factorLayers: [], groups: []};
  map.fitBounds(data.bounds);
  L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png', {
    maxZoom: 19,
    attribution: '&copy; OpenStreetMap contributors (basemap needs internet; risk layers work offline)'
  }).addTo(map);
  L.control.scale({imperial: false, position: 'bottomleft'}).addTo(map);

  /* The layer panel: every layer declares its group (rtm.addOverlay(layer, label, group));
   * groups are listed in the order first declared, each a <details> that the group's
   * declaration opens or leaves collapsed. Layers added later by other code slot in. */
  var panelBody = null;
  function findGroup(name) {
    for (var i = 0; i < window.rtm.groups.length; i++) {
      if (window.rtm.groups[i].name === name) { return window.rtm.groups[i]; }
    }
    return null;
  }
  function drawGroup(group) {
    if (!panelBody || group.node) { return; }
    group.node = document.createElement('details');
    group.node.className = 'rtm-group';
    group.node.open = group.open;
    group.title = el('summary', group.name);
    group.node.appendChild(group.title);
    group.list = el('div', null, 'rtm-group-rows');
    group.node.appendChild(group.list);
    panelBody.appendChild(group.node);
    group.rows.forEach(function (row) { drawRow(group, row); });
  }
  function drawRow(group, row) {
    if (!group.list) { return; }
    var label = el('label', null, 'rtm-layer-row');
    var box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = map.hasLayer(row.layer);
    box.addEventListener('change', function () {
      if (box.checked) { map.addLayer(row.layer); } else { map.removeLayer(row.layer); }
    });
    row.box = box;
    label.appendChild(box);
    label.appendChild(el('span', row.label));
    group.list.appendChild(label);
    group.title.textContent = group.name + (group.count ? ' (' + group.rows.length + ')' : '');
  }
  window.rtm.addOverlay = function (layer, label, groupName, options) {
    options = options || {};
    var group = findGroup(groupName);
    if (!group) {
      group = {name: groupName, open: !!options.open, count: !!options.count, rows: []};
      window.rtm.groups.push(group);
      drawGroup(group);
    }
    var row = {layer: layer, label: label};
    group.rows.push(row);
    drawRow(group, row);
    return layer;
  };
  map.on('layeradd layerremove', function (e) {
    window.rtm.groups.forEach(function (group) {
      group.rows.forEach(function (row) {
        if (row.layer === e.layer && row.box) { row.box.checked = e.type === 'layeradd'; }
      });
    });
  });

  var addOverlay = window.rtm.addOverlay;
  var risk = L.imageOverlay(data.risk.url, data.risk.bounds, {opacity: 0.75, className: 'rtm-pixelated'}).addTo(map);
  addOverlay(risk, 'Relative risk score', 'Risk', {open: true});
  window.rtm.layers.risk = risk;
  var tiers = L.imageOverlay(data.tiers.url, data.tiers.bounds, {opacity: 0.8, className: 'rtm-pixelated'});
  addOverlay(tiers, 'Risk tiers', 'Risk');
  window.rtm.layers.tiers = tiers;
  if (data.forecast) {
    const forecast = L.imageOverlay(data.forecast.url, data.forecast.bounds, {opacity: 0.8, className: 'rtm-pixelated'});
    addOverlay(forecast, data.forecast.label, 'Risk');
  }
  if (data.area) {
    window.rtm.layers.area = addOverlay(L.geoJSON(data.area, {
      style: {color: '#222', weight: 2, fill: false}, interactive: false
    }).addTo(map), 'Study area', 'Risk');
  }

  function popupOptions(extra) {
    /* (autoPan keeps a popup in the part of the map the panels leave free: set on every
     * popup below, once the panels are drawn) */
    return L.extend({maxWidth: 360, maxHeight: Math.max(160, window.innerHeight - 140)}, extra || {});
  }
  function placeLayer(places, colour, dash) {
    return L.geoJSON({type: 'FeatureCollection', features: places.features}, {
      style: {color: colour, weight: 2, dashArray: dash, fillColor: colour, fillOpacity: 0.04},
      onEachFeature: function (feature, layer) {
        layer.bindPopup(function () { return placePopup(feature.properties); }, popupOptions());
      }
    });
  }
  var places = placeLayer(data.places, data.colours.place, null).addTo(map);
  addOverlay(places, data.places.label, 'Places', {open: true});
  var priority = placeLayer(data.priority, data.colours.priority, '6 4').addTo(map);
  addOverlay(priority, data.priority.label, 'Places');
  window.rtm.layers.places = places;
  window.rtm.layers.priority = priority;

  function patrolPopup(p) {
    var box = el('div', null, 'rtm-popup');
    box.appendChild(el('h3', 'Patrol place #' + p.rank + ' (' + p.ref + ')'));
    var facts = el('ul', null, 'rtm-facts');
    if (p.street) { facts.appendChild(el('li', 'Nearest street: ' + p.street)); }
    facts.appendChild(el('li', 'Expected: ' + num(p.expected, 1) + '; ' + data.crime + ' in the period: ' + p.events));
    if (p.recent !== null && p.recent !== undefined) { facts.appendChild(el('li', 'Recent: ' + p.recent)); }
    if (p.why) { facts.appendChild(el('li', 'Why: ' + p.why)); }
    box.appendChild(facts);
    return box;
  }
  function patrolLayer(layer) {
    if (!layer) { return; }
    var group = L.geoJSON({type: 'FeatureCollection', features: layer.features}, {
      style: {color: layer.colour, weight: 2, fillColor: layer.colour, fillOpacity: 0.25},
      onEachFeature: function (feature, shape) {
        shape.bindPopup(function () { return patrolPopup(feature.properties); }, {maxWidth: 360});
      }
    }).addTo(map);
    addOverlay(group, layer.label, 'Places', {open: true});
    window.rtm.layers.patrol = group;
  }
  function interventionLayer(layer) {
    if (!layer) { return; }
    var group = L.geoJSON({type: 'FeatureCollection', features: layer.shapes.map(function (g) {
      return {type: 'Feature', geometry: g, properties: {}};
    })}, {style: {color: layer.colour, weight: 2, dashArray: '2 4', fillOpacity: 0.1}, interactive: false});
    addOverlay(group, layer.label, 'Places');
    window.rtm.layers.intervention = group;
  }
  patrolLayer(data.patrol);
  interventionLayer(data.intervention);

  if (data.events) {
    var events = L.layerGroup(data.events.points.map(function (ll) {
      return L.circleMarker(ll, {radius: 3, color: '#000', weight: 1, fillColor: '#fff', fillOpacity: 0.9});
    }));
    if (data.events.points.length <= 2000) { events.addTo(map); }
    addOverlay(events, data.events.label, 'Places');
  }

  (data.streets ? [data.streets] : []).forEach(function (streets) {
    var lines = L.geoJSON(streets.collection, {
      style: {color: '#6b6b6b', weight: 1.2, opacity: 0.85},
      onEachFeature: function (feature, layer) {
        if (feature.properties && feature.properties.name) {
          layer.bindPopup(function () { return el('div', feature.properties.name, 'rtm-street'); }, popupOptions({maxWidth: 240}));
          layer.bindTooltip(feature.properties.name, {sticky: true, direction: 'top', opacity: 0.9});
        }
      }
    }).addTo(map);
    lines.bringToBack();
    addOverlay(lines, streets.label, 'Context', {open: true});
    window.rtm.layers.streets = lines;
  });

  data.factors.forEach(function (factor) {
    var style = {radius: 4, color: factor.colour, weight: 1, fillColor: factor.colour, fillOpacity: 0.8};
    var group = L.layerGroup();
    (factor.points || []).forEach(function (ll, i) {
      var marker = L.circleMarker(ll, style);
      marker.bindPopup(function () { return featurePopup(factor.name, factor.attrs[i]); }, popupOptions());
      group.addLayer(marker);
    });
    (factor.shapes || []).forEach(function (shape, i) {
      var layer = L.geoJSON(shape, {style: {color: factor.colour, weight: 2, fillOpacity: 0.2}});
      layer.bindPopup(function () { return featurePopup(factor.name, factor.attrs[i]); }, popupOptions());
      group.addLayer(layer);
    });
    addOverlay(group, factor.label, factor.group, {count: true});
    window.rtm.factorLayers.push(group);
  });

  var info = L.control({position: 'topleft'});
  info.onAdd = function () {
    var box = document.createElement('details');
    box.className = 'rtm-box rtm-info';
    box.open = wide;
    box.appendChild(el('summary', data.title));
    data.lines.forEach(function (line) { box.appendChild(el('p', line)); });
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    return box;
  };
  info.addTo(map);

  var panel = L.control({position: 'topright'});
  panel.onAdd = function () {
    var box = document.createElement('details');
    box.className = 'rtm-box rtm-layers';
    box.open = wide;
    box.appendChild(el('summary', 'Layers'));
    panelBody = el('div', null, 'rtm-layers-body');
    box.appendChild(panelBody);
    window.rtm.groups.forEach(drawGroup);
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    return box;
  };
  panel.addTo(map);

  var legend = L.control({position: 'topright'});
  legend.onAdd = function () {
    var box = document.createElement('details');
    box.className = 'rtm-box rtm-legend';
    box.open = wide;
    box.appendChild(el('summary', 'Legend'));
    var riskPart = el('div', null, 'rtm-legend-risk');
    riskPart.appendChild(el('h4', 'Relative risk score'));
    var bar = el('div', null, 'rtm-ramp');
    bar.style.background = 'linear-gradient(to right, ' + data.risk.ramp.join(', ') + ')';
    riskPart.appendChild(bar);
    var ticks = el('div', null, 'rtm-ticks');
    data.risk.ticks.forEach(function (t) {
      var tick = el('span', t[1]);
      tick.style.left = (100 * t[0]) + '%';
      ticks.appendChild(tick);
    });
    riskPart.appendChild(ticks);
    box.appendChild(riskPart);
    var tierPart = el('div', null, 'rtm-legend-tiers');
    tierPart.appendChild(el('h4', 'Risk tiers'));
    data.tiers.items.forEach(function (t) {
      var row = el('div', null, 'rtm-row');
      var swatch = el('span', null, 'rtm-swatch');
      swatch.style.background = t.colour;
      row.appendChild(swatch);
      row.appendChild(el('span', t.label));
      tierPart.appendChild(row);
    });
    box.appendChild(tierPart);
    [[data.colours.place, 'solid', data.places.label, places], [data.colours.priority, 'dashed', data.priority.label, priority]]
      .forEach(function (item) {
        var row = el('div', null, 'rtm-row');
        var swatch = el('span', null, 'rtm-swatch rtm-outline');
        swatch.style.border = '2px ' + item[1] + ' ' + item[0];
        row.appendChild(swatch);
        row.appendChild(el('span', item[2]));
        box.appendChild(row);
        legendParts.push([item[3], row]);
      });
    legendParts.push([risk, riskPart], [tiers, tierPart]);
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.disableScrollPropagation(box);
    return box;
  };
  /* A legend entry shows only while its layer is on the map. */
  var legendParts = [];
  function syncLegend() {
    legendParts.forEach(function (part) { part[1].style.display = map.hasLayer(part[0]) ? '' : 'none'; });
  }
  legend.addTo(map);
  map.on('layeradd layerremove', syncLegend);
  syncLegend();

  /* On a small screen the panels start closed, and opening one closes the others. */
  var boxes = document.querySelectorAll('details.rtm-box');
  Array.prototype.forEach.call(boxes, function (box) {
    box.addEventListener('toggle', function () {
      if (wide || !box.open) { return; }
      Array.prototype.forEach.call(boxes, function (other) { if (other !== box) { other.open = false; } });
    });
  });

  /* Fit the study area into the part of the map the panels leave free. */
  function freeArea() {
    var size = map.getSize();
    var left = 10, right = 10, top = 10, bottom = 10;
    ['.leaflet-top.leaflet-left', '.leaflet-top.leaflet-right'].forEach(function (selector, i) {
      var corner = document.querySelector(selector);
      if (!corner) { return; }
      var rect = corner.getBoundingClientRect();
      if (wide) {
        if (i === 0) { left = Math.max(left, rect.width + 10); } else { right = Math.max(right, rect.width + 10); }
      } else {
        top = Math.max(top, rect.height + 10);
      }
    });
    var scale = document.querySelector('.leaflet-bottom.leaflet-left');
    if (scale) { bottom = Math.max(bottom, scale.getBoundingClientRect().height + 6); }
    if (left + right > size.x - 120) { left = right = 10; top = Math.max(top, 60); }
    return {topLeft: L.point(left, top), bottomRight: L.point(right, bottom)};
  }
  window.rtm.fitToFreeArea = function () {
    var free = window.rtm.freeArea = freeArea();
    L.Popup.mergeOptions({autoPanPaddingTopLeft: free.topLeft, autoPanPaddingBottomRight: free.bottomRight});
    map.fitBounds(data.bounds, {paddingTopLeft: free.topLeft, paddingBottomRight: free.bottomRight});
  };
  window.rtm.fitToFreeArea();

  window.rtm.openPopup = function (kind, rank) {
    var found = null;
    window.rtm.layers[kind].eachLayer(function (layer) {
      if (layer.feature && layer.feature.properties.rank === rank) { found = layer; }
    });
    if (found) { found.openPopup(); }
    return found !== null;
  };
  window.rtm.ready = true;
})();
