# Shared by every interface package this repository builds (CMakeLists.txt for msg/ and srv/,
# interfaces/tf2_msgs/ where the installed ROS lacks tf2_msgs).
#
# ROS wheels from PyPI export their *__rosidl_generator_py targets with the wheel builder's
# include paths (/opt/python/...), which do not exist here, and CMake refuses to generate.
# Call warpd_fix_rosidl_wheel_include_dirs() after rosidl_generate_interfaces, which imports more
# such targets itself (service_msgs). It points those targets at this interpreter's and numpy's
# headers. On a normal ROS install the exported paths exist and nothing is touched.
macro(warpd_fix_rosidl_wheel_include_dirs)
  find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module)
  execute_process(
    COMMAND "${Python3_EXECUTABLE}" -c "import numpy; print(numpy.get_include())"
    OUTPUT_VARIABLE WARPD_NUMPY_INCLUDE OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _warpd_numpy_rc)
  if(NOT _warpd_numpy_rc EQUAL 0)
    message(FATAL_ERROR "numpy is not importable by ${Python3_EXECUTABLE}")
  endif()
  get_directory_property(_warpd_imported_targets IMPORTED_TARGETS)
  foreach(_warpd_target IN LISTS _warpd_imported_targets)
    if(_warpd_target MATCHES "__rosidl_generator_py$")
      get_target_property(_warpd_dirs ${_warpd_target} INTERFACE_INCLUDE_DIRECTORIES)
      set(_warpd_all_exist TRUE)
      foreach(_warpd_dir IN LISTS _warpd_dirs)
        if(NOT EXISTS "${_warpd_dir}")
          set(_warpd_all_exist FALSE)
        endif()
      endforeach()
      if(NOT _warpd_all_exist)
        set_target_properties(${_warpd_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
          "${Python3_INCLUDE_DIRS};${WARPD_NUMPY_INCLUDE}")
      endif()
    endif()
  endforeach()
endmacro()
