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

  var map = L.map('map', {preferCanvas: true, zoomSnap: 0.25});
  window.rtm = {map: map, ready: false, layers: {}, factorLayers: []};
  map.fitBounds(data.bounds);
  L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png', {
    maxZoom: 19,
    attribution: '&copy; OpenStreetMap contributors (basemap needs internet; risk layers work offline)'
  }).addTo(map);
  L.control.scale({imperial: false}).addTo(map);

  var overlays = {};
  var risk = L.imageOverlay(data.risk.url, data.risk.bounds, {opacity: 0.75, className: 'rtm-pixelated'}).addTo(map);
  overlays['Relative risk score'] = risk;
  var tiers = L.imageOverlay(data.tiers.url, data.tiers.bounds, {opacity: 0.8, className: 'rtm-pixelated'});
  overlays['Risk tiers'] = tiers;
  if (data.forecast) {
    overlays[esc(data.forecast.label)] = L.imageOverlay(data.forecast.url, data.forecast.bounds, {opacity: 0.8, className: 'rtm-pixelated'});
  }
  if (data.area) {
    overlays['Study area'] = L.geoJSON(data.area, {
      style: {color: '#222', weight: 2, fill: false}, interactive: false
    }).addTo(map);
  }

  function placeLayer(places, colour, dash) {
    return L.geoJSON({type: 'FeatureCollection', features: places.features}, {
      style: {color: colour, weight: 2, dashArray: dash, fillColor: colour, fillOpacity: 0.04},
      onEachFeature: function (feature, layer) {
        layer.bindPopup(function () { return placePopup(feature.properties); }, {maxWidth: 360});
      }
    });
  }
  var places = placeLayer(data.places, data.colours.place, null).addTo(map);
  overlays[esc(data.places.label)] = places;
  var priority = placeLayer(data.priority, data.colours.priority, '6 4').addTo(map);
  overlays[esc(data.priority.label)] = priority;
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
    overlays[esc(layer.label)] = group;
    window.rtm.layers.patrol = group;
  }
  function interventionLayer(layer) {
    if (!layer) { return; }
    var group = L.geoJSON({type: 'FeatureCollection', features: layer.shapes.map(function (g) {
      return {type: 'Feature', geometry: g, properties: {}};
    })}, {style: {color: layer.colour, weight: 2, dashArray: '2 4', fillOpacity: 0.1}, interactive: false});
    overlays[esc(layer.label)] = group;
    window.rtm.layers.intervention = group;
  }
  patrolLayer(data.patrol);
  interventionLayer(data.intervention);

  if (data.events) {
    var events = L.layerGroup(data.events.points.map(function (ll) {
      return L.circleMarker(ll, {radius: 3, color: '#000', weight: 1, fillColor: '#fff', fillOpacity: 0.9});
    }));
    if (data.events.points.length <= 2000) { events.addTo(map); }
    overlays[esc(data.events.label)] = events;
  }

  data.factors.forEach(function (factor) {
    var style = {radius: 4, color: factor.colour, weight: 1, fillColor: factor.colour, fillOpacity: 0.8};
    var group = L.layerGroup();
    (factor.points || []).forEach(function (ll, i) {
      var marker = L.circleMarker(ll, style);
      marker.bindPopup(function () { return featurePopup(factor.name, factor.attrs[i]); });
      group.addLayer(marker);
    });
    (factor.shapes || []).forEach(function (shape, i) {
      var layer = L.geoJSON(shape, {style: {color: factor.colour, weight: 2, fillOpacity: 0.2}});
      layer.bindPopup(function () { return featurePopup(factor.name, factor.attrs[i]); });
      group.addLayer(layer);
    });
    overlays[esc(factor.label)] = group;
    window.rtm.factorLayers.push(group);
  });
  L.control.layers(null, overlays, {collapsed: window.innerWidth < 900}).addTo(map);

  var info = L.control({position: 'topleft'});
  info.onAdd = function () {
    var box = el('div', null, 'rtm-box rtm-info');
    box.appendChild(el('h2', data.title));
    data.lines.forEach(function (line) { box.appendChild(el('p', line)); });
    L.DomEvent.disableClickPropagation(box);
    return box;
  };
  info.addTo(map);

  var legend = L.control({position: 'bottomright'});
  legend.onAdd = function () {
    var box = el('div', null, 'rtm-box rtm-legend');
    box.appendChild(el('h4', 'Relative risk score'));
    var bar = el('div', null, 'rtm-ramp');
    bar.style.background = 'linear-gradient(to right, ' + data.risk.ramp.join(', ') + ')';
    box.appendChild(bar);
    var ticks = el('div', null, 'rtm-ticks');
    data.risk.ticks.forEach(function (t) {
      var tick = el('span', t[1]);
      tick.style.left = (100 * t[0]) + '%';
      ticks.appendChild(tick);
    });
    box.appendChild(ticks);
    box.appendChild(el('h4', 'Risk tiers'));
    data.tiers.items.forEach(function (t) {
      var row = el('div', null, 'rtm-row');
      var swatch = el('span', null, 'rtm-swatch');
      swatch.style.background = t.colour;
      row.appendChild(swatch);
      row.appendChild(el('span', t.label));
      box.appendChild(row);
    });
    [[data.colours.place, 'solid', data.places.label], [data.colours.priority, 'dashed', data.priority.label]]
      .forEach(function (item) {
        var row = el('div', null, 'rtm-row');
        var swatch = el('span', null, 'rtm-swatch rtm-outline');
        swatch.style.border = '2px ' + item[1] + ' ' + item[0];
        row.appendChild(swatch);
        row.appendChild(el('span', item[2]));
        box.appendChild(row);
      });
    return box;
  };
  legend.addTo(map);

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
