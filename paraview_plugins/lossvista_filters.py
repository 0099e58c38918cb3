"""lossvista's ParaView plugin: the filters of the "Loss Landscape" menu.

Load it with Tools > Manage Plugins > Load New, ``LoadPlugin(path, remote=False)`` in
pvpython, or ``PV_PLUGIN_PATH``. Debian's ParaView 5.11 on Python 3.11 needs the
``getargspec`` alias first: start ParaView with ``PYTHONPATH=<repo>/paraview_plugins`` (see
``sitecustomize.py`` beside this file) or set it in a script before ``LoadPlugin``. Guide:
docs/paraview.md.

The filters use numpy and ParaView's own vtkmodules only. The numbers are computed by this
package's numpy-only modules, imported inside ``RequestData``: ``pipeline.display`` (cap,
threshold, contour levels), ``pipeline.geometry`` (triangulation, interpolation, relief scale),
``pipeline.datamodel`` (which values are usable, the centre) -- the code of the quick-look
pictures and ``lossvista export`` -- and ``pipeline.topology`` (the code of ``lossvista
analyze``). This file holds the VTK plumbing and the properties only.

Filters (each class's docstring is its help text in ParaView, each property's its tooltip):

Loss Threshold          blank or clamp above a cap (default: the quick looks' cap), or log10;
                        keeps the structured grid (or image); settings in field data ``lossvista_threshold``
Loss Critical Points    minima, saddles, maxima with persistence, as ``lossvista analyze``;
                        second output: the ``basin`` labels on the grid
Loss Contours           N contour lines of the piecewise-linear surface, linear or log levels,
                        each polyline with its ``level``; of a volume, N isosurfaces
Warp By Loss            z = scale x value (or log10) for the surface, contours, path and critical
                        points; the same ``Surface`` input gives them all one scale

The first three take a volume too (``volume_<kind>.vti``, vtkImageData of dimensions
``(nx, ny, nz)``): Loss Critical Points then finds minima, 1-saddles, 2-saddles and maxima on the
tetrahedral subdivision (TTK's 3D codes 0, 1, 2, 3), as ``lossvista analyze`` does.

Errors on bad input (no loss array, not a 2D grid, ...) are written to ParaView's output
window as ``<filter>: <what is wrong>``, and the filter produces nothing.
"""
import inspect
import json
import os
import sys

if not hasattr(inspect, "getargspec"):  # ParaView 5.11 + Python 3.11 (see sitecustomize.py)
    inspect.getargspec = inspect.getfullargspec



def _import_pipeline():
    """Make lossvista's ``pipeline`` package (its numpy-only parts) importable in ParaView's Python.

    It is this file's folder's neighbour in a checkout (``<repo>/paraview_plugins`` beside
    ``<repo>/pipeline``) and its parent in an installed package (``pipeline/paraview_plugins``).
    The package alone is loaded from there; the folder around it is not put on ``sys.path``, so
    nothing else of the environment it was installed in (numpy, vtk) can shadow ParaView's own.
    """
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    for root in (os.path.join(os.path.dirname(here), "pipeline"), os.path.dirname(here)):
        init = os.path.join(root, "__init__.py")
        if os.path.isfile(init) and os.path.isfile(os.path.join(root, "display.py")):
            break
    else:
        raise ImportError(f"lossvista's pipeline package was not found beside {here}")
    loaded = sys.modules.get("pipeline")
    if loaded is not None and os.path.dirname(os.path.abspath(getattr(loaded, "__file__", "") or "")) == root:
        return
    spec = importlib.util.spec_from_file_location("pipeline", init, submodule_search_locations=[root])
    module = importlib.util.module_from_spec(spec)
    sys.modules["pipeline"] = module
    spec.loader.exec_module(module)


_import_pipeline()

from paraview.util.vtkAlgorithm import VTKPythonAlgorithmBase, smdomain, smhint, smproperty, smproxy  # noqa: E402

paraview_plugin_name = "lossvista"
paraview_plugin_version = "0.1.0"

META_NAME = "losscape_meta"
THRESHOLD_RECORD = "lossvista_threshold"  # field data: JSON of the Loss Threshold settings
WARP_RECORD = "lossvista_warp"  # field data: JSON of the Warp By Loss scale
HIDDENPOINT = 2  # vtkDataSetAttributes::HIDDENPOINT bit of vtkGhostType
CATEGORY = '<ShowInMenu category="Loss Landscape" />'

# XML snippets shared by the filters' properties ------------------------------------------

_INPUT_ARRAYS = '<InputArrayDomain name="input_array" attribute_type="point" number_of_components="1" />'
_ARRAY_LIST = """<ArrayListDomain name="array_list" input_domain_name="input_array" attribute_type="Scalars">
  <RequiredProperties><Property name="Input" function="Input" /></RequiredProperties>
</ArrayListDomain>"""


def _enum(*entries):
    body = "".join(f'<Entry value="{i}" text="{text}" />' for i, text in enumerate(entries))
    return f'<EnumerationDomain name="enum">{body}</EnumerationDomain>'


def _shown_when(prop, value):
    """Hint: show this property only while the enumeration ``prop`` has ``value``."""
    return (f'<PropertyWidgetDecorator type="GenericDecorator" mode="visibility" '
            f'property="{prop}" value="{value}" />')


def _documented(func):
    """Decorator, innermost: the method's docstring becomes the property's tooltip.

    ParaView's decorators do not read docstrings; a ``<Documentation>`` element does it.
    """
    from xml.sax.saxutils import escape

    text = " ".join(inspect.cleandoc(func.__doc__ or "").split())
    return smdomain.xml(f"<Documentation>{escape(text)}</Documentation>")(func)


def _described(short):
    """Class decorator: ``short`` is the filter's tooltip, the class docstring its help text."""
    from xml.sax.saxutils import escape, quoteattr

    def decorate(cls):
        long = " ".join(inspect.cleandoc(_undecorated(cls).__doc__ or short).split())
        return smproperty.xml(f"<Documentation short_help={quoteattr(short)} long_help={quoteattr(short)}>"
                              f"{escape(long)}</Documentation>")(cls)

    return decorate


def _undecorated(obj):
    while hasattr(obj, "_pv_original_func"):
        obj = obj._pv_original_func
    return obj


# small helpers (numpy imported lazily: the module is imported by the GUI at start-up) -----


class InputError(Exception):
    """Bad input or settings; reported in the output window, not as a traceback."""


def _report_error(label, message):
    from vtkmodules.vtkCommonCore import vtkOutputWindow

    vtkOutputWindow.GetInstance().DisplayErrorText(f"{label}: {message}\n")


def _report_warning(label, message):
    from vtkmodules.vtkCommonCore import vtkOutputWindow

    vtkOutputWindow.GetInstance().DisplayWarningText(f"{label}: {message}\n")


class _LossFilter(VTKPythonAlgorithmBase):
    """What every filter here shares: property setters and error reporting.

    Subclasses set ``LABEL`` (the name in messages) and implement ``_execute(inInfo, outInfo)``;
    an InputError it raises becomes ``<LABEL>: <message>`` in the output window and a failed
    request, not a traceback.
    """

    LABEL = "lossvista"

    def _set(self, attr, value):
        """Set ``attr``; Modified() only when the value changes."""
        if getattr(self, attr) != value:
            setattr(self, attr, value)
            self.Modified()

    def RequestData(self, request, inInfo, outInfo):
        try:
            self._execute(inInfo, outInfo)
        except InputError as exc:
            _report_error(self.LABEL, str(exc))
            return 0
        return 1


def _dims(data, what="input"):
    """(nx, ny) of a 2D grid ``(nx, ny, 1)``, or (nx, ny, nz) of a volume (vtkImageData, every size >= 2)."""
    from vtkmodules.vtkCommonDataModel import vtkImageData

    if isinstance(data, vtkImageData):
        dims = [0, 0, 0]
        data.GetDimensions(dims)
        if dims[2] > 1:
            if min(dims) < 2:
                raise InputError(f"the {what} must be a volume with every dimension >= 2; got {tuple(dims)}")
            return tuple(int(d) for d in dims)
    return _grid_shape(data, what)


def _grid_shape(data, what="input"):
    """(nx, ny) of a 2D grid ``(nx, ny, 1)``; InputError for anything else."""
    from vtkmodules.vtkCommonDataModel import vtkImageData, vtkRectilinearGrid, vtkStructuredGrid

    if data is None:
        raise InputError(f"no {what}")
    if not isinstance(data, (vtkStructuredGrid, vtkImageData, vtkRectilinearGrid)):
        raise InputError(
            f"the {what} must be a 2D grid (a lossvista surface_*.vts: vtkStructuredGrid with dimensions "
            f"(nx, ny, 1)); got a {data.GetClassName()}")
    dims = [0, 0, 0]
    data.GetDimensions(dims)
    if dims[2] != 1 or dims[0] < 2 or dims[1] < 2:
        raise InputError(f"the {what} must be a 2D grid with dimensions (nx, ny, 1), nx and ny >= 2; "
                         f"got dimensions {tuple(dims)}")
    return int(dims[0]), int(dims[1])


def _point_names(data):
    pd = data.GetPointData()
    return [pd.GetArrayName(k) for k in range(pd.GetNumberOfArrays()) if pd.GetArrayName(k)]


def _values(data, name, what="input"):
    """float64 copy of the one-component point array ``name``."""
    import numpy as np
    from vtkmodules.util.numpy_support import vtk_to_numpy

    if not name:
        raise InputError("no array chosen (set the 'Array' property, e.g. to 'loss')")
    arr = data.GetPointData().GetArray(name)
    if arr is None:
        names = ", ".join(_point_names(data)) or "none"
        raise InputError(f"the {what} has no point array {name!r} (point arrays: {names}); "
                         f"a lossvista surface has 'loss'")
    if arr.GetNumberOfComponents() != 1:
        raise InputError(f"point array {name!r} must have 1 component; got {arr.GetNumberOfComponents()}")
    return np.array(vtk_to_numpy(arr), dtype=np.float64)


def _optional_values(data, name):
    from vtkmodules.util.numpy_support import vtk_to_numpy

    arr = data.GetPointData().GetArray(name) if data is not None else None
    return None if arr is None else vtk_to_numpy(arr)


def _record(data, name):
    """The JSON object stored in field data string array ``name``, or None."""
    fd = data.GetFieldData() if data is not None else None
    arr = fd.GetAbstractArray(name) if fd is not None else None
    if arr is None or arr.GetNumberOfValues() < 1:
        return None
    try:
        value = json.loads(arr.GetValue(0))
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _set_record(data, name, value):
    from vtkmodules.vtkCommonCore import vtkStringArray

    arr = vtkStringArray()
    arr.SetName(name)
    arr.InsertNextValue(json.dumps(value, sort_keys=True))
    data.GetFieldData().RemoveArray(name)
    data.GetFieldData().AddArray(arr)


def _unusable(data, name, values):
    """bool mask of the points whose raw value of array ``name`` is not usable: the data model's
    rule (:func:`pipeline.datamodel.usable_mask`: non-finite, or bounded for loss and accuracy)."""
    from pipeline.datamodel import usable_mask

    bounded = _optional_values(data, "bounded")
    return ~usable_mask(name, values, None if bounded is None else bounded != 0)


def _missing(data, name, values):
    """bool mask of the points whose value is not to be used.

    Hidden (blanked) points, non-finite values, and -- for data not yet thresholded -- values
    that are not usable (:func:`_unusable`). After Loss Threshold, usability is already
    accounted for (Clamp deliberately shows bounded points above the cap).
    """
    import numpy as np

    out = ~np.isfinite(values)
    ghost = _optional_values(data, "vtkGhostType")
    if ghost is not None:
        out |= (np.asarray(ghost).astype(np.uint8) & HIDDENPOINT) != 0
    if _record(data, THRESHOLD_RECORD) is None:
        out |= _unusable(data, name, values)
    return out


def _copy_field_data(src, dst):
    fd = src.GetFieldData()
    for k in range(fd.GetNumberOfArrays()):
        dst.GetFieldData().AddArray(fd.GetAbstractArray(k))


def _numpy_to_vtk(values, name):
    import numpy as np
    from vtkmodules.util.numpy_support import numpy_to_vtk

    arr = numpy_to_vtk(np.ascontiguousarray(values), deep=True)
    arr.SetName(name)
    return arr


def _points_xyz(data):
    """(N, 3) float64 point coordinates of any vtkDataSet."""
    import numpy as np
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkCommonDataModel import vtkPointSet

    if isinstance(data, vtkPointSet):
        pts = data.GetPoints()
        return np.zeros((0, 3)) if pts is None else np.array(vtk_to_numpy(pts.GetData()), dtype=np.float64)
    return np.array([data.GetPoint(k) for k in range(data.GetNumberOfPoints())], dtype=np.float64)


def _same_type_output(inInfo, outInfo, port=0, convert_images=False):
    """RequestDataObject: make output ``port`` of the input's type (images -> structured grids)."""
    from vtkmodules.vtkCommonDataModel import vtkDataObject, vtkStructuredGrid

    inp = vtkDataObject.GetData(inInfo[0], 0)
    if inp is None:
        return 0
    info = outInfo.GetInformationObject(port)
    out = info.Get(vtkDataObject.DATA_OBJECT())
    if convert_images and not inp.IsA("vtkPointSet") and inp.IsA("vtkDataSet"):
        wanted = "vtkStructuredGrid"
        make = vtkStructuredGrid
    else:
        wanted = inp.GetClassName()
        make = inp.NewInstance
    if out is None or out.GetClassName() != wanted:
        info.Set(vtkDataObject.DATA_OBJECT(), make())
    return 1


def _as_thresholded(values, record):
    """Transform raw values as Loss Threshold did to the reference surface (``record``).

    Blank and Clamp: values above the cap become the cap (a path cannot be blanked point by
    point without breaking it, so it runs along the rim); Log10: log10, NaN where <= 0.
    """
    from pipeline import display

    if not record:
        return values
    if record.get("mode") == "log10":
        return display.threshold(values, "log10")[0]
    return display.threshold(values, "clamp", float(record["cap"]))[0]


# ------------------------------------------------------------------------------------------
# grids: shape checks, axes, layout


def _is_grid(data):
    try:
        _grid_shape(data)
    except InputError:
        return False
    return True


def _axes(data, nx, ny, nz=None):
    """(xs (nx,), ys (ny,)[, zs (nz,)]) of an axis-aligned grid (volume), or None when it is curvilinear."""
    import numpy as np

    if nz is not None:  # an image: its axes are origin + spacing * index
        origin, spacing = data.GetOrigin(), data.GetSpacing()
        if min(spacing) <= 0:
            return None
        return tuple(origin[k] + spacing[k] * np.arange(n) for k, n in enumerate((nx, ny, nz)))
    xyz = _points_xyz(data).reshape(ny, nx, 3)
    xs, ys = xyz[0, :, 0], xyz[:, 0, 1]
    if not (np.allclose(xyz[:, :, 0], xs[None, :]) and np.allclose(xyz[:, :, 1], ys[:, None])):
        return None
    if not (np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)):
        return None
    return xs, ys


def _grid(flat, *dims):
    """(nx, ny[, nz]) view of a point array in VTK order (vertex id ``i + nx * j (+ nx * ny * k)``)."""
    import numpy as np

    return np.asarray(flat).reshape(dims[::-1]).T


def _centre_id(data):
    """Vertex id of the grid point at the origin (:func:`pipeline.datamodel.centre_index`), or None."""
    from pipeline.datamodel import centre_index

    dims = _dims(data)
    axes = _axes(data, *dims)
    ijk = centre_index(*axes) if axes is not None else None
    if ijk is None:
        return None
    return int(sum(i * stride for i, stride in zip(ijk, (1, dims[0], dims[0] * dims[1]))))


# ------------------------------------------------------------------------------------------
# Loss Threshold


@smproxy.filter(name="LossThreshold", label="Loss Threshold")
@_described('Cap a loss surface for viewing: blank or clamp above a cap, or log10; keeps the grid.')
@smhint.xml(CATEGORY)
@smproperty.input(name="Input", port_index=0)
@smdomain.datatype(dataTypes=["vtkDataSet"], composite_data_supported=False)
@smdomain.xml(_INPUT_ARRAYS)
class LossThreshold(_LossFilter):
    """Cap a loss surface (or volume) for viewing (blank or clamp above a cap, or log10), keeping its grid.

    Output: the input grid with the array replaced (NaN at hidden points), the original
    values as ``<array>_raw``, hidden points marked in ``vtkGhostType`` (HIDDENPOINT) and the
    settings in the field data ``lossvista_threshold`` (JSON: array, mode, cap, minimum, ...).
    """

    LABEL = "Loss Threshold"
    MODES = ("blank", "clamp", "log10")
    CAP_MODES = ("multiple of minimum", "absolute", "multiple of centre value",
                 "multiple of max(centre value, chance loss)")

    def __init__(self):
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=1, nOutputPorts=1, outputType="vtkDataSet")
        self._array = "loss"
        self._mode = 0
        self._cap_mode = 3
        self._cap_factor = 5.0
        self._cap = 1.0

    @smproperty.stringvector(name="Array", default_values="loss")
    @smdomain.xml(_ARRAY_LIST)
    @_documented
    def SetArray(self, name):
        """The point array to threshold (default: loss)."""
        self._set("_array", name)

    @smproperty.intvector(name="Mode", default_values=0)
    @smdomain.xml(_enum("Blank above cap", "Clamp at cap", "Log10"))
    @_documented
    def SetMode(self, value):
        """Blank above cap: hide the points above the cap (vtkGhostType HIDDENPOINT; their
        values become NaN). Clamp at cap: values above the cap become the cap. Log10: values
        become their base-10 logarithm (non-positive ones are hidden); no cap. Points whose value
        is not usable (non-finite, or only bounded) are hidden in every mode, except that Clamp
        shows those known to lie above the cap at the cap."""
        self._set("_mode", int(value))

    @smproperty.intvector(name="CapMode", label="Cap Mode", default_values=3)
    @smdomain.xml(_enum("Multiple of minimum", "Absolute", "Multiple of centre value",
                        "Multiple of max(centre value, chance loss)"))
    @smhint.xml('<PropertyWidgetDecorator type="GenericDecorator" mode="visibility" property="Mode" '
                'value="2" inverse="1" />')
    @_documented
    def SetCapMode(self, value):
        """How the cap is given: Cap Factor x the minimum; the absolute Cap; Cap Factor x the
        value at the centre (0, 0) of the plane; or (default, as the quick-look pictures) Cap
        Factor x max(centre value, chance loss), the chance loss being ln(num_classes) from the
        surface's metadata (1 when unknown) -- a minimum near 0 then does not make the cap 0."""
        self._set("_cap_mode", int(value))

    @smproperty.doublevector(name="CapFactor", label="Cap Factor", default_values=5.0)
    @smdomain.doublerange(min=1.0, max=1000.0)
    @smhint.xml('<PropertyWidgetDecorator type="GenericDecorator" mode="visibility" property="CapMode" '
                'value="1" inverse="1" />')
    @_documented
    def SetCapFactor(self, value):
        """Cap = Cap Factor x the minimum (or x the centre value); needs a positive reference."""
        self._set("_cap_factor", float(value))

    @smproperty.doublevector(name="Cap", default_values=1.0)
    @smhint.xml(_shown_when("CapMode", "1"))
    @_documented
    def SetCap(self, value):
        """Absolute cap (the report dropped losses above 1.0 to keep divergent ResNet regions
        readable)."""
        self._set("_cap", float(value))

    def RequestDataObject(self, request, inInfo, outInfo):
        return _same_type_output(inInfo, outInfo)

    def _cap_value(self, data, v, usable, vmin):
        """(cap, record entries) for Blank and Clamp; the rule is :func:`pipeline.display.default_cap`."""
        import numpy as np

        from pipeline import display

        if self._cap_mode == 1:
            cap = self._cap
            if not np.isfinite(cap) or cap < vmin:
                raise InputError(f"Cap must be a finite number >= the minimum of {self._array!r} ({vmin:g}); "
                                 f"got {cap!r}")
            return float(cap), {"cap_mode": "absolute"}
        if not (np.isfinite(self._cap_factor) and self._cap_factor >= 1):
            raise InputError(f"Cap Factor must be a finite number >= 1; got {self._cap_factor!r}")
        if self._cap_mode not in (0, 2, 3):
            raise InputError(f"Cap Mode must be 0, 1, 2 or 3; got {self._cap_mode}")
        what = ("minimum", None, "centre value", "reference")[self._cap_mode]
        centre = None if self._cap_mode == 0 else _centre_id(data)
        if self._cap_mode == 2 and (centre is None or not usable[centre]):
            raise InputError("Cap Mode 'Multiple of centre value' needs a valid grid point at (0, 0); "
                             "this grid has none (use another Cap Mode)")
        floor = display.chance_loss(_record(data, META_NAME) or {}) if self._cap_mode == 3 else 0.0
        ref = display.cap_reference(v, usable, centre, floor)
        if not ref > 0:
            raise InputError(f"a cap given as a multiple of the {what} needs a positive {what}; the {what} of "
                             f"{self._array!r} is {ref:g} (set Cap Mode to Absolute)")
        cap = display.default_cap(v, usable, centre=centre, cap_factor=self._cap_factor, floor=floor)
        return cap, {"cap_mode": self.CAP_MODES[self._cap_mode], "cap_factor": self._cap_factor,
                     "cap_reference": ref}

    def _execute(self, inInfo, outInfo):
        import numpy as np
        from vtkmodules.vtkCommonDataModel import vtkDataSet

        from pipeline import display

        inp = vtkDataSet.GetData(inInfo[0], 0)
        out = vtkDataSet.GetData(outInfo, 0)
        _dims(inp)
        if _record(inp, THRESHOLD_RECORD) is not None:
            raise InputError("the input is already thresholded; apply Loss Threshold to the surface itself")
        if not 0 <= self._mode < len(self.MODES):
            raise InputError(f"Mode must be 0 (Blank), 1 (Clamp) or 2 (Log10); got {self._mode}")
        mode = self.MODES[self._mode]
        v = _values(inp, self._array)
        invalid = _unusable(inp, self._array, v)
        ghost = _optional_values(inp, "vtkGhostType")
        ghost = np.zeros(len(v), np.uint8) if ghost is None else np.array(ghost, dtype=np.uint8)
        hidden_before = (ghost & HIDDENPOINT) != 0
        usable = ~(invalid | hidden_before)
        if not usable.any():
            raise InputError(f"no point has a valid finite {self._array!r}")
        vmin = float(v[usable].min())
        record = {"array": self._array, "mode": mode, "minimum": vmin, "maximum": float(v[usable].max())}

        cap = None
        if mode != "log10":
            cap, extra = self._cap_value(inp, v, usable, vmin)
            record.update(extra, cap=cap)
        new, hidden = display.threshold(v, mode, cap, invalid=invalid, hidden=hidden_before)
        record["hidden_points"] = int(hidden.sum())

        out.ShallowCopy(inp)
        pd = out.GetPointData()
        pd.AddArray(_numpy_to_vtk(v, f"{self._array}_raw"))
        pd.AddArray(_numpy_to_vtk(new, self._array))  # replaces the input's array of that name
        if hidden.any() or hidden_before.any():
            pd.AddArray(_numpy_to_vtk(np.where(hidden, ghost | HIDDENPOINT, ghost).astype(np.uint8), "vtkGhostType"))
        pd.SetActiveScalars(self._array)
        _set_record(out, THRESHOLD_RECORD, record)


# ------------------------------------------------------------------------------------------
# Loss Contours


@smproxy.filter(name="LossContours", label="Loss Contours")
@_described('Contour lines of a loss surface (isosurfaces of a volume), N levels (linear or log), each with its level.')
@smhint.xml(CATEGORY)
@smproperty.input(name="Input", port_index=0)
@smdomain.datatype(dataTypes=["vtkDataSet"], composite_data_supported=False)
@smdomain.xml(_INPUT_ARRAYS)
class LossContours(_LossFilter):
    """Contour lines of a loss surface, each polyline carrying its ``level``; of a volume, isosurfaces.

    The grid is split into triangles as the topology's triangulation (docs/architecture.md), so the
    lines are exact for the piecewise-linear surface that the critical points refer to.
    Triangles touching a hidden or invalid point are left out. Output: polylines with point
    and cell array ``level``, the input's other point arrays interpolated, the input's field
    data, and ``lossvista_contours`` (JSON: the levels). A volume (vtkImageData of dimensions
    ``(nx, ny, nz)``) gives one closed isosurface (triangles) per level, by VTK's contour filter
    on the voxels; hidden and invalid points count as above every level, so isosurfaces close
    around divergent regions instead of passing through them.
    """

    LABEL = "Loss Contours"

    def __init__(self):
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=1, nOutputPorts=1, outputType="vtkPolyData")
        self._array = "loss"
        self._n = 20
        self._spacing = 1
        self._range_mode = 0
        self._range = (0.1, 10.0)

    @smproperty.stringvector(name="Array", default_values="loss")
    @smdomain.xml(_ARRAY_LIST)
    @_documented
    def SetArray(self, name):
        """The point array to contour (default: loss)."""
        self._set("_array", name)

    @smproperty.intvector(name="NumberOfLevels", label="Number Of Levels", default_values=20)
    @smdomain.intrange(min=1, max=200)
    @_documented
    def SetNumberOfLevels(self, n):
        """How many contour levels."""
        self._set("_n", int(n))

    @smproperty.intvector(name="Spacing", default_values=1)
    @smdomain.xml(_enum("Linear", "Log"))
    @_documented
    def SetSpacing(self, value):
        """Linear: equal steps in the value. Log: equal steps in log10 of the value (needs a
        positive range; the usual choice for losses, whose interesting part is near the
        minimum)."""
        self._set("_spacing", int(value))

    @smproperty.intvector(name="RangeMode", label="Range Mode", default_values=0)
    @smdomain.xml(_enum("Automatic", "Given"))
    @_documented
    def SetRangeMode(self, value):
        """Automatic: from the minimum to the cap of Loss Threshold (to the maximum when the
        input is not thresholded or Log10), levels strictly inside. Given: the Range below,
        both ends included."""
        self._set("_range_mode", int(value))

    @smproperty.doublevector(name="Range", default_values=[0.1, 10.0])
    @smhint.xml(_shown_when("RangeMode", "1"))
    @_documented
    def SetRange(self, lo, hi):
        """Lowest and highest level (Range Mode = Given)."""
        self._set("_range", (float(lo), float(hi)))

    def levels(self, data, v, missing):
        """The levels (:func:`pipeline.display.contour_levels`): Given range with both ends, or
        the minimum to the cap (the maximum without one) strictly inside."""
        from pipeline import display

        log = self._spacing == 1
        if self._n < 1:
            raise InputError(f"Number Of Levels must be >= 1; got {self._n}")
        if self._range_mode == 1:
            lo, hi = self._range
            ends = True
        else:
            good = v[~missing]
            if good.size == 0:
                raise InputError(f"no point has a valid finite {self._array!r}")
            rec = _record(data, THRESHOLD_RECORD) or {}
            capped = rec.get("array") == self._array and rec.get("mode") in ("blank", "clamp")
            lo, hi = float(good.min()), float(rec["cap"]) if capped else float(good.max())
            ends = False
        try:
            return display.contour_levels(lo, hi, self._n, log=log, lower=ends, upper=ends)
        except ValueError as exc:
            raise InputError(f"{exc} (check Spacing, Range Mode and Range)") from None

    def _execute(self, inInfo, outInfo):
        import numpy as np
        from vtkmodules.util.numpy_support import numpy_to_vtkIdTypeArray
        from vtkmodules.vtkCommonCore import vtkPoints
        from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkDataObject, vtkDataSet, vtkPolyData
        from vtkmodules.vtkFiltersCore import vtkAppendPolyData, vtkContourFilter, vtkStripper

        from pipeline import geometry

        inp = vtkDataSet.GetData(inInfo[0], 0)
        out = vtkPolyData.GetData(outInfo, 0)
        dims = _dims(inp)
        v = _values(inp, self._array)
        missing = _missing(inp, self._array, v)
        levels = self.levels(inp, v, missing)
        if len(dims) == 3:
            self._isosurfaces(inp, out, v, missing, levels)
            return
        nx, ny = dims

        tri = geometry.grid_triangles(nx, ny, keep=_grid(~missing, nx, ny))  # (T, 3) VTK point ids
        mesh = vtkPolyData()
        pts = vtkPoints()
        pts.SetDataTypeToDouble()
        pts.SetData(_numpy_to_vtk(_points_xyz(inp), "Points"))
        mesh.SetPoints(pts)
        cells = vtkCellArray()
        cells.SetData(numpy_to_vtkIdTypeArray(np.arange(0, 3 * len(tri) + 1, 3, dtype=np.int64), deep=True),
                      numpy_to_vtkIdTypeArray(tri.ravel().astype(np.int64), deep=True))
        mesh.SetPolys(cells)
        src = inp.GetPointData()
        for k in range(src.GetNumberOfArrays()):
            arr = src.GetArray(k)
            if arr is not None and arr.GetName() and arr.GetName() not in ("vtkGhostType", "valid"):
                mesh.GetPointData().AddArray(arr)

        append = vtkAppendPolyData()
        pieces = []
        for level in levels:
            contour = vtkContourFilter()
            contour.SetInputData(mesh)
            contour.SetInputArrayToProcess(0, 0, 0, vtkDataObject.FIELD_ASSOCIATION_POINTS, self._array)
            contour.SetValue(0, float(level))
            strip = vtkStripper()
            strip.SetInputConnection(contour.GetOutputPort())
            strip.JoinContiguousSegmentsOn()
            strip.Update()
            piece = vtkPolyData()
            piece.ShallowCopy(strip.GetOutput())
            if piece.GetNumberOfCells() == 0:
                continue
            piece.GetPointData().AddArray(_numpy_to_vtk(np.full(piece.GetNumberOfPoints(), level), "level"))
            piece.GetCellData().AddArray(_numpy_to_vtk(np.full(piece.GetNumberOfCells(), level), "level"))
            pieces.append(piece)
            append.AddInputData(piece)
        if pieces:
            append.Update()
            out.ShallowCopy(append.GetOutput())
        self._finish(inp, out, levels)

    def _finish(self, inp, out, levels):
        out.GetPointData().SetActiveScalars("level")
        _copy_field_data(inp, out)
        _set_record(out, "lossvista_contours", {"array": self._array, "levels": [float(x) for x in levels],
                                               "spacing": "log" if self._spacing == 1 else "linear"})

    def _isosurfaces(self, inp, out, v, missing, levels):
        """One isosurface per level of a volume; missing points above every level."""
        import numpy as np
        from vtkmodules.vtkCommonDataModel import vtkDataObject, vtkImageData
        from vtkmodules.vtkFiltersCore import vtkContourFilter

        image = vtkImageData()
        image.CopyStructure(inp)
        above = float(levels[-1]) * (2.0 if levels[-1] > 0 else 1.0) + 1.0
        image.GetPointData().AddArray(_numpy_to_vtk(np.where(missing, above, v), self._array))
        contour = vtkContourFilter()
        contour.SetInputData(image)
        contour.SetInputArrayToProcess(0, 0, 0, vtkDataObject.FIELD_ASSOCIATION_POINTS, self._array)
        contour.ComputeScalarsOn()
        contour.ComputeNormalsOn()
        for k, level in enumerate(levels):
            contour.SetValue(k, float(level))
        contour.Update()
        out.ShallowCopy(contour.GetOutput())
        pd = out.GetPointData()
        values = _optional_values(out, self._array)
        if values is not None:  # each point lies on its level: name it as the lines' array is named
            level = np.asarray(levels, dtype=np.float64)
            snapped = level[np.abs(np.asarray(values)[:, None] - level[None, :]).argmin(axis=1)]
            pd.AddArray(_numpy_to_vtk(snapped, "level"))
        self._finish(inp, out, levels)


# ------------------------------------------------------------------------------------------
# Warp By Loss


@smproxy.filter(name="WarpByLoss", label="Warp By Loss")
@_described('Lift surface, contours, path or critical points to z = scale x loss, all on one scale.')
@smhint.xml(CATEGORY)
@smproperty.input(name="Surface", port_index=1)
@smdomain.datatype(dataTypes=["vtkDataSet"], composite_data_supported=False)
@smhint.xml("<Optional />")
@smproperty.input(name="Input", port_index=0)
@smdomain.datatype(dataTypes=["vtkDataSet"], composite_data_supported=False)
class WarpByLoss(_LossFilter):
    """Lift points to ``z = scale * value`` (or ``scale * log10(value)``).

    Works on the surface grid, contour lines, the trajectory and critical points. The
    automatic scale makes the relief (highest minus lowest height) of the reference surface
    -- the optional ``Surface`` input, else the input itself when it is a grid -- equal to
    Relief Fraction x the plane's size ``sqrt(width * height)``. Inputs that were not thresholded get the
    reference's Loss Threshold transform first (values above its cap become the cap), so a
    path or a critical point lies on the warped surface. Heights that are not finite are
    taken from the reference surface at the point (piecewise-linear); what is left is put at
    the top of the relief. Output: the input with new z, a point array ``height`` and the
    field data ``lossvista_warp`` (JSON: scale, array, ...).
    """

    LABEL = "Warp By Loss"
    AUTO_ARRAYS = ("surface_loss", "loss", "level")

    def __init__(self):
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=2, nOutputPorts=1, outputType="vtkDataSet")
        self._height_array = ""
        self._height = 0
        self._scale_mode = 0
        self._fraction = 0.5
        self._scale = 1.0

    def FillInputPortInformation(self, port, info):
        info.Set(self.INPUT_REQUIRED_DATA_TYPE(), "vtkDataSet")
        if port == 1:
            info.Set(self.INPUT_IS_OPTIONAL(), 1)
        return 1

    @smproperty.stringvector(name="HeightArray", label="Height Array", default_values="")
    @smhint.xml("<PlaceholderText>automatic: surface_loss, loss or level</PlaceholderText>")
    @_documented
    def SetHeightArray(self, name):
        """Point array giving the height. Empty: the first of surface_loss (trajectory),
        the thresholded array (usually loss: surface, critical points), level (contours)."""
        self._set("_height_array", str(name or ""))

    @smproperty.intvector(name="Height", default_values=0)
    @smdomain.xml(_enum("Value", "Log10 of value"))
    @_documented
    def SetHeight(self, value):
        """Value: z = scale x value. Log10 of value: z = scale x log10(value) (non-positive
        values have no height). Not with a Loss Threshold in Log10 mode (already logged)."""
        self._set("_height", int(value))

    @smproperty.intvector(name="ScaleMode", label="Scale Mode", default_values=0)
    @smdomain.xml(_enum("Automatic", "Explicit"))
    @_documented
    def SetScaleMode(self, value):
        """Automatic: from the reference surface and Relief Fraction (the same for every input
        that shares the reference). Explicit: Scale Factor."""
        self._set("_scale_mode", int(value))

    @smproperty.doublevector(name="ReliefFraction", label="Relief Fraction", default_values=0.5)
    @smdomain.doublerange(min=0.0, max=5.0)
    @smhint.xml(_shown_when("ScaleMode", "0"))
    @_documented
    def SetReliefFraction(self, value):
        """Relief of the reference surface as a fraction of the plane's size sqrt(width x height)."""
        self._set("_fraction", float(value))

    @smproperty.doublevector(name="ScaleFactor", label="Scale Factor", default_values=1.0)
    @smhint.xml(_shown_when("ScaleMode", "1"))
    @_documented
    def SetScaleFactor(self, value):
        """z = Scale Factor x value (Scale Mode = Explicit; 0 gives a flat plane)."""
        self._set("_scale", float(value))

    def RequestDataObject(self, request, inInfo, outInfo):
        return _same_type_output(inInfo, outInfo, convert_images=True)

    def _auto_array(self, data, record):
        names = _point_names(data)
        preferred = [self.AUTO_ARRAYS[0], (record or {}).get("array") or "loss", *self.AUTO_ARRAYS[1:]]
        for name in preferred:
            if name in names:
                return name
        raise InputError(f"no height array: the input has none of {', '.join(dict.fromkeys(preferred))} "
                         f"(point arrays: {', '.join(names) or 'none'}); set Height Array")

    def _heights(self, values):
        from pipeline import display

        return values if self._height == 0 else display.log10_or_nan(values)

    def _execute(self, inInfo, outInfo):
        import numpy as np
        from vtkmodules.vtkCommonCore import vtkPoints
        from vtkmodules.vtkCommonDataModel import vtkDataSet, vtkPointSet

        from pipeline import geometry

        inp = vtkDataSet.GetData(inInfo[0], 0)
        ref = vtkDataSet.GetData(inInfo[1], 0) if inInfo[1].GetNumberOfInformationObjects() else None
        out = vtkDataSet.GetData(outInfo, 0)
        for data, what in ((inp, "input"), (ref, "Surface input")):
            if data is not None and data.IsA("vtkImageData") and len(_dims(data, what)) == 3:
                raise InputError(f"the {what} is a volume: its third axis is a direction (gamma), not a height; "
                                 f"show it with Loss Contours (isosurfaces), slices or volume rendering")
        if ref is not None:
            _grid_shape(ref, "Surface input")
        inp_is_grid = _is_grid(inp)
        if ref is None and inp_is_grid:
            ref = inp
        rec_in, rec_ref = _record(inp, THRESHOLD_RECORD), _record(ref, THRESHOLD_RECORD)
        if self._height == 1 and "log10" in ((rec_in or {}).get("mode"), (rec_ref or {}).get("mode")):
            raise InputError("the values are already log10 (Loss Threshold in Log10 mode); set Height to Value")
        name = self._height_array or self._auto_array(inp, rec_in or rec_ref)
        raw = _values(inp, name)
        h = self._heights(_as_thresholded(raw, None if rec_in is not None else rec_ref))
        miss = ~np.isfinite(h)
        if inp_is_grid:
            miss |= _missing(inp, name, raw)

        href = ref_miss = None
        ref_name = None
        if ref is not None:
            if ref is inp:
                ref_name, href, ref_miss = name, h, miss
            else:
                ref_names = _point_names(ref)
                ref_name = (rec_ref or {}).get("array") or ("loss" if "loss" in ref_names else name)
                vr = _values(ref, ref_name, "Surface input")
                href = self._heights(vr)
                ref_miss = _missing(ref, ref_name, vr) | ~np.isfinite(href)

        xyz = _points_xyz(inp)
        extent = None
        if self._scale_mode == 1:
            scale = self._scale
            if not np.isfinite(scale):
                raise InputError(f"Scale Factor must be a finite number; got {scale!r}")
        elif self._scale_mode == 0:
            if ref is None:
                raise InputError("the automatic scale needs the loss surface: connect it (e.g. the Loss Threshold "
                                 "output) to the 'Surface' input, or set Scale Mode to Explicit")
            good = href[~ref_miss]
            if good.size == 0:
                raise InputError(f"the reference surface has no valid {ref_name!r} value")
            rxyz = xyz if ref is inp else _points_xyz(ref)
            sides = np.ptp(rxyz[:, :2], axis=0)  # (width, height) of the plane
            extent = geometry.plane_size(sides, "geometric")
            if not (np.isfinite(self._fraction) and self._fraction >= 0):
                raise InputError(f"Relief Fraction must be a finite number >= 0; got {self._fraction!r}")
            scale = geometry.relief_scale(good, sides, self._fraction, size="geometric")
            if not np.ptp(good) > 0:
                _report_warning(self.LABEL, f"the reference {ref_name!r} is constant; using scale 1")
        else:
            raise InputError(f"Scale Mode must be 0 (Automatic) or 1 (Explicit); got {self._scale_mode}")

        surface = None  # the reference's heights on its grid, to put a path's gaps on it
        if not inp_is_grid and ref is not None and miss.any():
            nxr, nyr = _grid_shape(ref)
            axes = _axes(ref, nxr, nyr)
            if axes is not None:
                surface = (*axes, _grid(np.where(ref_miss, np.nan, href), nxr, nyr))
        top = float(href[~ref_miss].max()) if ref is not None and (~ref_miss).any() else None
        h = geometry.fill_heights(np.where(miss, np.nan, h), xyz[:, :2], surface, top=top)
        z = scale * h

        if isinstance(inp, vtkPointSet):
            out.ShallowCopy(inp)
        else:  # vtkImageData / vtkRectilinearGrid -> vtkStructuredGrid with explicit points
            from vtkmodules.vtkFiltersGeneral import vtkImageDataToPointSet, vtkRectilinearGridToPointSet

            conv = vtkImageDataToPointSet() if inp.IsA("vtkImageData") else vtkRectilinearGridToPointSet()
            conv.SetInputData(inp)
            conv.Update()
            out.ShallowCopy(conv.GetOutput())
        new_xyz = xyz.copy()
        new_xyz[:, 2] = z
        pts = vtkPoints()
        pts.SetDataTypeToDouble()
        pts.SetData(_numpy_to_vtk(new_xyz, "Points"))
        out.SetPoints(pts)
        out.GetPointData().AddArray(_numpy_to_vtk(z, "height"))
        _set_record(out, WARP_RECORD, {
            "scale": float(scale), "height": "log10" if self._height == 1 else "value", "array": name,
            "reference_array": ref_name, "scale_mode": "explicit" if self._scale_mode == 1 else "automatic",
            "relief_fraction": self._fraction if self._scale_mode == 0 else None, "extent": extent,
        })


# ------------------------------------------------------------------------------------------
# Loss Critical Points


@smproxy.filter(name="LossCriticalPoints", label="Loss Critical Points")
@_described('Minima, saddles, maxima with persistence (as lossvista analyze; of a volume too); basins on output 2.')
@smhint.xml(CATEGORY)
@smproperty.xml('<OutputPort name="Critical Points" index="0" />')
@smproperty.xml('<OutputPort name="Basins" index="1" />')
@smproperty.input(name="Input", port_index=0)
@smdomain.datatype(dataTypes=["vtkDataSet"], composite_data_supported=False)
@smdomain.xml(_INPUT_ARRAYS)
class LossCriticalPoints(_LossFilter):
    """Minima, saddles and maxima of a loss surface, ranked by persistence (pipeline.topology).

    Output 0 (Critical Points): one vertex per critical point that survives the persistence
    threshold, at ``(alpha, beta, 0)``, with the point arrays of ``lossvista analyze``'s
    ``critical_points_<kind>.vtp``: ``CriticalType`` (TTK codes: 0 minimum, 1 saddle,
    3 maximum, 4 degenerate), ``persistence``, ``loss`` (the value), ``vertex_id``
    (``i + nx * j``), ``multiplicity``. Output 1 (Basins): the input grid with ``basin``
    (int32, the surviving minimum whose basin holds the point; -1 where the value is missing).
    A volume (vtkImageData ``(nx, ny, nz)``) is analysed on its tetrahedral subdivision: points
    at ``(alpha, beta, gamma)``, ``CriticalType`` 0 minimum, 1 1-saddle, 2 2-saddle, 3 maximum,
    4 degenerate, ``vertex_id`` ``i + nx * j + nx * ny * k``.
    Hidden points and values that are not usable (non-finite, or only bounded by an early exit)
    count as above every value, as in ``lossvista analyze``.
    """

    LABEL = "Loss Critical Points"

    def __init__(self):
        VTKPythonAlgorithmBase.__init__(self, nInputPorts=1, nOutputPorts=2, outputType="vtkPolyData")
        self._array = "loss"
        self._persistence = 0.0  # the defaults of `lossvista analyze`
        self._relative = 0
        self._boundary = 0

    def FillOutputPortInformation(self, port, info):
        from vtkmodules.vtkCommonDataModel import vtkDataObject

        info.Set(vtkDataObject.DATA_TYPE_NAME(), "vtkPolyData" if port == 0 else "vtkDataSet")
        return 1

    @smproperty.stringvector(name="Array", default_values="loss")
    @smdomain.xml(_ARRAY_LIST)
    @_documented
    def SetArray(self, name):
        """The point array to analyze (default: loss)."""
        self._set("_array", name)

    @smproperty.doublevector(name="PersistenceThreshold", label="Persistence Threshold", default_values=0.0)
    @smdomain.doublerange(min=0.0)
    @_documented
    def SetPersistenceThreshold(self, value):
        """Keep the features whose persistence exceeds this (the global minimum and maximum
        always stay). Value units, or a fraction of the value range (Threshold Mode). The
        default, 0, drops only the zero-persistence pairs of ties, as `lossvista analyze`."""
        self._set("_persistence", float(value))

    @smproperty.intvector(name="ThresholdMode", label="Threshold Mode", default_values=0)
    @smdomain.xml(_enum("Absolute", "Relative to value range"))
    @_documented
    def SetThresholdMode(self, value):
        """Absolute: Persistence Threshold in loss units. Relative: a fraction (0..1) of the
        range of the valid values."""
        self._set("_relative", int(value))

    @smproperty.intvector(name="Boundary", default_values=0)
    @smdomain.xml(_enum("Keep", "Leave out"))
    @_documented
    def SetBoundary(self, value):
        """Keep: every surviving critical point. Leave out: not those on the boundary of the grid,
        where the plane (box) cuts the landscape: the maxima and saddles there belong to the cut,
        not to the loss (counts and persistence are unchanged)."""
        self._set("_boundary", int(value))

    def RequestDataObject(self, request, inInfo, outInfo):
        from vtkmodules.vtkCommonDataModel import vtkDataObject, vtkPolyData

        info0 = outInfo.GetInformationObject(0)
        if not isinstance(info0.Get(vtkDataObject.DATA_OBJECT()), vtkPolyData):
            info0.Set(vtkDataObject.DATA_OBJECT(), vtkPolyData())
        return _same_type_output(inInfo, outInfo, port=1)

    def _execute(self, inInfo, outInfo):
        import numpy as np
        from vtkmodules.util.numpy_support import numpy_to_vtkIdTypeArray
        from vtkmodules.vtkCommonCore import vtkPoints
        from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkDataSet, vtkPolyData

        from pipeline.topology import analyze  # numpy only: the code of `lossvista analyze`

        inp = vtkDataSet.GetData(inInfo[0], 0)
        points_out = vtkPolyData.GetData(outInfo, 0)
        grid_out = vtkDataSet.GetData(outInfo, 1)
        dims = _dims(inp)
        axes = _axes(inp, *dims)
        if axes is None:
            raise InputError("the grid must be axis-aligned (points (alpha, beta, 0) as in surface_*.vts); "
                             "apply Loss Critical Points before Warp By Loss")
        v = _values(inp, self._array)
        missing = _missing(inp, self._array, v)
        if missing.all():
            raise InputError(f"no point has a valid finite {self._array!r}")
        values = _grid(np.where(missing, np.nan, v), *dims)  # values[i, j(, k)] at (xs[i], ys[j](, zs[k]))
        try:
            topo = analyze(values, persistence=self._persistence, relative=bool(self._relative),
                           **dict(zip(("xs", "ys", "zs"), axes)))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        arrays = topo.critical_point_arrays()
        if self._boundary == 1:  # only the points inside the grid
            index = topo.critical_points.index
            inside = np.all((index > 0) & (index < np.asarray(topo.shape) - 1), axis=1)
            arrays = {name: a[inside] for name, a in arrays.items()}

        xyz = arrays.pop("points")
        pts = vtkPoints()
        pts.SetDataTypeToDouble()
        pts.SetData(_numpy_to_vtk(np.asarray(xyz, dtype=np.float64).reshape(-1, 3), "Points"))
        points_out.SetPoints(pts)
        k = len(xyz)
        verts = vtkCellArray()
        verts.SetData(numpy_to_vtkIdTypeArray(np.arange(k + 1, dtype=np.int64), deep=True),
                      numpy_to_vtkIdTypeArray(np.arange(k, dtype=np.int64), deep=True))
        points_out.SetVerts(verts)
        for name, values_k in arrays.items():
            points_out.GetPointData().AddArray(_numpy_to_vtk(values_k, name))
        points_out.GetPointData().SetActiveScalars("CriticalType")
        _copy_field_data(inp, points_out)
        _set_record(points_out, "lossvista_topology", {
            "array": self._array, "persistence": topo.persistence, "relative": topo.relative,
            "threshold": topo.threshold, "value_range": list(topo.value_range), "counts": topo.counts(),
            "ndim": topo.ndim, "boundary": "left out" if self._boundary == 1 else "kept"})

        grid_out.ShallowCopy(inp)
        grid_out.GetPointData().AddArray(_numpy_to_vtk(np.ascontiguousarray(topo.basins.T).ravel(), "basin"))
