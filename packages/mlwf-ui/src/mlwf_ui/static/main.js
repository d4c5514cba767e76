var { Badge: e, Box: t, HStack: n, Heading: r, Link: i, Spinner: a, Stack: o, Table: s, Text: c } = globalThis.ChakraUI, l = class extends Error {
	status;
	detail;
	parameter;
	constructor(e, t, n) {
		super(`${e}: ${t}`), this.status = e, this.detail = t, this.parameter = n;
	}
};
function u(e) {
	return new URL(e.replace(/^\/+/, ""), document.baseURI).toString();
}
function d(e) {
	if (e && typeof e == "object") {
		let { detail: t, parameter: n } = e;
		return {
			detail: typeof t == "string" ? t : t === void 0 ? void 0 : JSON.stringify(t),
			parameter: typeof n == "string" ? n : void 0
		};
	}
	return {};
}
async function f(e, t) {
	let n = await fetch(u(e), {
		credentials: "same-origin",
		headers: { Accept: "application/json" },
		signal: t
	});
	if (!n.ok) {
		let e;
		try {
			e = await n.json();
		} catch {
			e = void 0;
		}
		let { detail: t, parameter: r } = d(e);
		throw new l(n.status, t ?? n.statusText, r);
	}
	if (!(n.headers.get("content-type") ?? "").includes("json")) throw new l(404, `the API server has no route /${e.split("?")[0]} (is the mlwf package serving it installed?)`);
	return await n.json();
}
var { Fragment: p, StrictMode: m, Suspense: h, createContext: g, createElement: _, forwardRef: v, memo: y, startTransition: b, use: x, useCallback: S, useContext: C, useDeferredValue: w, useEffect: T, useId: E, useLayoutEffect: D, useMemo: O, useReducer: k, useRef: A, useState: j, useSyncExternalStore: M, useTransition: N } = globalThis.React;
// src/usePolling.ts
function P(e, t) {
	let [n, r] = j({
		data: void 0,
		error: void 0,
		loading: !0
	});
	return T(() => {
		if (e === null) return;
		let n = new AbortController(), i, a = async () => {
			try {
				let o = await f(e, n.signal);
				r({
					data: o,
					error: void 0,
					loading: !1
				});
				let s = t(o);
				s !== null && (i = setTimeout(a, s));
			} catch (e) {
				if (n.signal.aborted) return;
				r((t) => ({
					data: t.data,
					error: e,
					loading: !1
				}));
			}
		};
		return r({
			data: void 0,
			error: void 0,
			loading: !0
		}), a(), () => {
			n.abort(), i !== void 0 && clearTimeout(i);
		};
	}, [e]), n;
}
var { Fragment: F, jsx: I, jsxs: L } = globalThis.ReactJSXRuntime;
// src/pages/Constructors.tsx
function R() {
	let t = P("mlwf/constructors/constructors", () => null), n = P("mlwf/constructors/instances", () => null), l = t.error ?? n.error;
	return l ? /* @__PURE__ */ L(c, {
		color: "fg.error",
		children: ["Could not load the constructors: ", l.message]
	}) : !t.data || !n.data ? /* @__PURE__ */ I(a, {}) : /* @__PURE__ */ L(o, {
		gap: 4,
		p: 2,
		children: [
			/* @__PURE__ */ I(r, {
				size: "md",
				children: "Constructors"
			}),
			/* @__PURE__ */ L(s.Root, {
				size: "sm",
				variant: "outline",
				"data-testid": "constructors",
				children: [/* @__PURE__ */ I(s.Header, { children: /* @__PURE__ */ I(s.Row, { children: [
					"name",
					"version",
					"description"
				].map((e) => /* @__PURE__ */ I(s.ColumnHeader, { children: e }, e)) }) }), /* @__PURE__ */ I(s.Body, { children: t.data.constructors.map((e) => /* @__PURE__ */ L(s.Row, { children: [
					/* @__PURE__ */ I(s.Cell, { children: e.name }),
					/* @__PURE__ */ I(s.Cell, { children: e.version }),
					/* @__PURE__ */ I(s.Cell, { children: e.description })
				] }, e.name)) })]
			}),
			/* @__PURE__ */ I(r, {
				size: "sm",
				children: "Instances"
			}),
			n.data.instances.length === 0 ? /* @__PURE__ */ I(c, { children: "No instances you may see yet." }) : /* @__PURE__ */ L(s.Root, {
				size: "sm",
				variant: "outline",
				"data-testid": "instances",
				children: [/* @__PURE__ */ I(s.Header, { children: /* @__PURE__ */ I(s.Row, { children: [
					"instance (its DAG)",
					"constructor",
					"owner",
					"enabled",
					"updated"
				].map((e) => /* @__PURE__ */ I(s.ColumnHeader, { children: e }, e)) }) }), /* @__PURE__ */ I(s.Body, { children: n.data.instances.map((t) => /* @__PURE__ */ L(s.Row, { children: [
					/* @__PURE__ */ I(s.Cell, { children: /* @__PURE__ */ I(i, {
						href: u(`dags/${encodeURIComponent(t.instance_id)}`),
						children: t.instance_id
					}) }),
					/* @__PURE__ */ L(s.Cell, { children: [
						t.constructor,
						" ",
						t.constructor_version
					] }),
					/* @__PURE__ */ I(s.Cell, { children: [t.owner, ...t.owner_groups].filter(Boolean).join(", ") }),
					/* @__PURE__ */ I(s.Cell, { children: /* @__PURE__ */ I(e, {
						colorPalette: t.enabled ? "green" : "gray",
						children: t.enabled ? "enabled" : "disabled"
					}) }),
					/* @__PURE__ */ I(s.Cell, { children: new Date(t.updated_at).toLocaleString() })
				] }, t.instance_id)) })]
			})
		]
	});
}
// src/format.ts
var z = {
	planned: "gray",
	running: "blue",
	succeeded: "green",
	failed: "red",
	pruned: "orange"
};
function B(e) {
	return e == null ? "" : typeof e == "number" ? Number.isInteger(e) ? String(e) : Math.abs(e) >= .001 && Math.abs(e) < 1e5 ? String(Number(e.toPrecision(4))) : e.toExponential(3) : typeof e == "string" ? e : JSON.stringify(e);
}
function V(e) {
	if (e === null) return "";
	if (e < 60) return `${e.toFixed(1)} s`;
	let t = Math.floor(e / 60);
	return t < 60 ? `${t} min ${Math.round(e % 60)} s` : `${Math.floor(t / 60)} h ${t % 60} min`;
}
// src/ExperimentsTable.tsx
function H(e, t) {
	return e == null ? t == null ? 0 : 1 : t == null ? -1 : typeof e == "number" && typeof t == "number" ? e - t : String(e).localeCompare(String(t));
}
function U({ experiments: r, params: i, metrics: a, bestIndex: o }) {
	let [l, u] = j({
		key: "index",
		descending: !1
	}), [d, f] = j("all"), p = O(() => [
		{
			key: "index",
			label: "#",
			value: (e) => e.index
		},
		{
			key: "state",
			label: "state",
			value: (e) => e.state
		},
		...i.map((e) => ({
			key: `param:${e}`,
			label: e,
			value: (t) => t.params[e]
		})),
		...a.map((e) => ({
			key: `metric:${e}`,
			label: e,
			value: (t) => t.metrics[e]
		})),
		{
			key: "duration",
			label: "duration",
			value: (e) => e.duration_s
		},
		{
			key: "error",
			label: "error",
			value: (e) => e.error
		}
	], [i, a]), m = O(() => {
		let e = p.find((e) => e.key === l.key) ?? p[0], t = [...r.filter((e) => d === "all" || e.state === d)].sort((t, n) => H(e.value(t), e.value(n)));
		if (l.descending) {
			let n = t.filter((t) => e.value(t) !== void 0 && e.value(t) !== null);
			return [...n.reverse(), ...t.slice(n.length)];
		}
		return t;
	}, [
		r,
		p,
		l,
		d
	]), h = Array.from(new Set(r.map((e) => e.state))).sort();
	return /* @__PURE__ */ L(t, { children: [/* @__PURE__ */ L(n, {
		gap: 3,
		mb: 2,
		children: [/* @__PURE__ */ L(c, {
			fontSize: "sm",
			children: [
				m.length,
				" of ",
				r.length,
				" experiments"
			]
		}), /* @__PURE__ */ L("label", { children: [/* @__PURE__ */ I(c, {
			as: "span",
			fontSize: "sm",
			mr: 1,
			children: "state"
		}), /* @__PURE__ */ L("select", {
			"aria-label": "filter by state",
			value: d,
			onChange: (e) => f(e.target.value),
			children: [/* @__PURE__ */ I("option", {
				value: "all",
				children: "all"
			}), h.map((e) => /* @__PURE__ */ I("option", {
				value: e,
				children: e
			}, e))]
		})] })]
	}), /* @__PURE__ */ L(s.Root, {
		size: "sm",
		variant: "outline",
		"data-testid": "experiments",
		children: [/* @__PURE__ */ I(s.Header, { children: /* @__PURE__ */ I(s.Row, { children: p.map((e) => /* @__PURE__ */ L(s.ColumnHeader, {
			cursor: "pointer",
			"aria-sort": l.key === e.key ? l.descending ? "descending" : "ascending" : "none",
			onClick: () => u((t) => ({
				key: e.key,
				descending: t.key === e.key && !t.descending
			})),
			children: [e.label, l.key === e.key ? l.descending ? " ▼" : " ▲" : ""]
		}, e.key)) }) }), /* @__PURE__ */ I(s.Body, { children: m.map((t) => /* @__PURE__ */ I(s.Row, {
			"data-index": t.index,
			fontWeight: t.index === o ? "bold" : void 0,
			children: p.map((n) => /* @__PURE__ */ I(s.Cell, { children: n.key === "state" ? /* @__PURE__ */ I(e, {
				colorPalette: z[t.state],
				children: t.state
			}) : n.key === "duration" ? V(t.duration_s) : n.key === "index" && t.index === o ? `${t.index} ★` : B(n.value(t)) }, n.key))
		}, t.index)) })]
	})] });
}
// src/pages/Tuning.tsx
var W = 5e3;
function G(e) {
	return (e.states.planned ?? 0) + (e.states.running ?? 0) > 0;
}
function K({ dagId: i, runId: s }) {
	let u = i && s ? `mlwf/tuning/tunings/${encodeURIComponent(i)}/${encodeURIComponent(s)}` : null, { data: d, error: f, loading: p } = P(u, (e) => G(e) ? W : null);
	if (u === null) return /* @__PURE__ */ I(c, { children: "Open a DAG run to see its tuning." });
	if (f instanceof l && f.status === 404 && !d) return /* @__PURE__ */ I(c, {
		"data-testid": "not-a-tuning",
		children: "This run is not a tuning, or you may not read its results."
	});
	if (f && !d) return /* @__PURE__ */ L(c, {
		color: "fg.error",
		children: ["Could not load the tuning: ", f.message]
	});
	if (p || !d) return /* @__PURE__ */ I(a, {});
	let m = d.hyperparameters.map((e) => e.name), h = Array.from(new Set(d.experiments.flatMap((e) => Object.keys(e.metrics)))).sort((e, t) => e === d.metric ? -1 : t === d.metric ? 1 : e.localeCompare(t)), g = d.experiments.find((e) => e.index === d.best_index);
	return /* @__PURE__ */ L(o, {
		gap: 4,
		p: 2,
		children: [
			/* @__PURE__ */ L(n, {
				gap: 3,
				wrap: "wrap",
				children: [
					/* @__PURE__ */ I(r, {
						size: "md",
						children: "Tuning"
					}),
					/* @__PURE__ */ I(e, { children: d.method }),
					/* @__PURE__ */ L(c, { children: [
						d.direction,
						" ",
						d.metric
					] }),
					G(d) && /* @__PURE__ */ I(e, {
						colorPalette: "blue",
						children: "running"
					}),
					f && /* @__PURE__ */ L(c, {
						color: "fg.error",
						children: ["refresh failed: ", f.message]
					})
				]
			}),
			/* @__PURE__ */ I(t, {
				"data-testid": "best",
				children: g ? /* @__PURE__ */ L(c, { children: [
					"Best: experiment ",
					g.index,
					", ",
					d.metric,
					" = ",
					B(d.best_value),
					" with",
					" ",
					m.map((e) => `${e} = ${B(g.params[e])}`).join(", ")
				] }) : /* @__PURE__ */ I(c, { children: "No experiment has succeeded yet." })
			}),
			/* @__PURE__ */ I(U, {
				experiments: d.experiments,
				params: m,
				metrics: h,
				bestIndex: d.best_index
			})
		]
	});
}
// src/pages/Tunings.tsx
var q = 1e4, J = 100;
function Y() {
	let { data: t, error: l, loading: d } = P(`mlwf/tuning/tunings?limit=${J}`, () => q);
	return l && !t ? /* @__PURE__ */ L(c, {
		color: "fg.error",
		children: ["Could not load the tunings: ", l.message]
	}) : d || !t ? /* @__PURE__ */ I(a, {}) : /* @__PURE__ */ L(o, {
		gap: 3,
		p: 2,
		children: [
			/* @__PURE__ */ I(r, {
				size: "md",
				children: "Tunings"
			}),
			/* @__PURE__ */ I(c, {
				fontSize: "sm",
				children: t.total_entries === 0 ? "No tunings yet. Create one from the Constructors page (constructor hyperparameter_tuning)." : `${t.total_entries} tunings${t.total_entries > J ? `, the newest ${J} shown` : ""}`
			}),
			t.tunings.length > 0 && /* @__PURE__ */ L(s.Root, {
				size: "sm",
				variant: "outline",
				"data-testid": "tunings",
				children: [/* @__PURE__ */ I(s.Header, { children: /* @__PURE__ */ I(s.Row, { children: [
					"DAG",
					"run",
					"method",
					"metric",
					"experiments",
					"best"
				].map((e) => /* @__PURE__ */ I(s.ColumnHeader, { children: e }, e)) }) }), /* @__PURE__ */ I(s.Body, { children: t.tunings.map((t) => /* @__PURE__ */ L(s.Row, { children: [
					/* @__PURE__ */ I(s.Cell, { children: /* @__PURE__ */ I(i, {
						href: u(`dags/${encodeURIComponent(t.dag_id)}`),
						children: t.dag_id
					}) }),
					/* @__PURE__ */ I(s.Cell, { children: t.run_id === null ? t.tuning_id : /* @__PURE__ */ I(i, {
						href: u(`dags/${encodeURIComponent(t.dag_id)}/runs/${encodeURIComponent(t.run_id)}/plugin/mlwf-tuning`),
						children: t.run_id
					}) }),
					/* @__PURE__ */ I(s.Cell, { children: t.method }),
					/* @__PURE__ */ L(s.Cell, { children: [
						t.direction,
						" ",
						t.metric
					] }),
					/* @__PURE__ */ I(s.Cell, { children: /* @__PURE__ */ I(n, {
						gap: 1,
						children: Object.entries(t.states).map(([t, n]) => /* @__PURE__ */ L(e, {
							colorPalette: z[t],
							children: [
								n,
								" ",
								t
							]
						}, t))
					}) }),
					/* @__PURE__ */ I(s.Cell, { children: t.best_index === null ? "" : `${B(t.best_value)} (#${t.best_index})` })
				] }, t.tuning_id)) })]
			})
		]
	});
}
// src/main.tsx
var X = {
	Constructors: R,
	Tunings: Y,
	Tuning: K
};
for (let [e, t] of Object.entries(X)) Reflect.set(globalThis, e, t);
export { X as PAGES };
