"""Weights the package ships: the quick profile's pre-trained Uninformed Students teachers
(``teacher_*.pt``, listed with their settings and SHA-256 in ``teachers.json``), made by
``tools/pretrain_teachers.py``. Data only; :func:`stad_utils.methods.patch_teacher.
shipped_teacher` finds them."""
